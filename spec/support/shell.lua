-- Runs a shell command for a spec: -> true|false (exit status 0), output
-- (stdout and stderr together).
return function(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"exit=$?\"")
  local out = p:read("*a")
  p:close()
  return out:match("exit=(%d+)%s*$") == "0", out
end
