-- lib.lua - shared steps of popgate-milter's miltertest scripts. Globals come
-- from miltertest -D: port (popgate-milter on 127.0.0.1), dir (this folder).
function check(ok, what)
  if not ok then error(what, 2) end
end

function replyname(r)
  local names = {
    [SMFIR_CONTINUE] = "continue", [SMFIR_ACCEPT] = "accept", [SMFIR_REJECT] = "reject",
    [SMFIR_DISCARD] = "discard", [SMFIR_TEMPFAIL] = "tempfail", [SMFIR_REPLYCODE] = "replycode",
  }
  return names[r] or ("reply " .. tostring(r))
end

function expect(conn, want, stage)
  local got = mt.getreply(conn)
  check(replyname(got) == want, stage .. ": popgate-milter answered " .. replyname(got) ..
        ", expected " .. want)
end

function connect_milter()
  local conn = mt.connect("inet:" .. port .. "@127.0.0.1", 40, 0.25)
  check(conn ~= nil, "cannot connect to popgate-milter on 127.0.0.1:" .. port)
  return conn
end
