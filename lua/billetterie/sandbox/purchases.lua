-- billetterie.sandbox.purchases: (being written) routes and tables of this group.
return { schema = {}, routes = {} }
