-- busted --helper for the sanitizer and valgrind runs: collect garbage all
-- the time, so a use-after-free or a missing reference shows up at once.
collectgarbage("setpause", 0)
collectgarbage("setstepmul", 1000)
