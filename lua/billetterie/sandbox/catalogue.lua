-- billetterie.sandbox.catalogue: (being written) routes and tables of this group.
return { schema = {}, routes = {} }
