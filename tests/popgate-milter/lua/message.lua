-- message.lua - one SMTP transaction through popgate-milter, driven by -D globals:
--   daemon      {daemon_name} of the MTA listener (default MTA; POPGATE = reinjection)
--   queueid     macro i
--   sender      MAIL FROM argument, e.g. <x@bad.com> or <>
--   from        header From (omitted when unset)
--   from_count  how many times the From header is sent (default 1)
--   hdr1..hdr9  more header fields, "Name: value"
--   at_mail     expected reply to MAIL FROM: continue | replycode (then the script ends)
--   at_eom      expected reply at end of message: accept | discard | replycode | tempfail | continue
--   deleted     header names the filter must have deleted, comma-separated
--   kept        header names it must not have deleted, comma-separated
--   added       a header name the filter must have added
--   quarantine  "yes": the filter must have asked for quarantine
--   reply_code, reply_xcode, reply_text  with at_eom = replycode: the reply expected
dofile(dir .. "/lib.lua")

local conn = connect_milter()
mt.macro(conn, SMFIC_CONNECT, "{daemon_name}", daemon or "MTA", "j", "mx.popgate.test")
check(mt.conninfo(conn, "client.example.net", "192.0.2.1") == nil, "conninfo")
expect(conn, "continue", "connect")
mt.macro(conn, SMFIC_MAIL, "i", queueid or "Q0")
check(mt.mailfrom(conn, sender) == nil, "mailfrom")
expect(conn, at_mail or "continue", "MAIL FROM " .. sender)
if (at_mail or "continue") ~= "continue" then
  mt.disconnect(conn)
  return
end
-- Steps popgate-milter declined at negotiation (no callback) are not sent:
-- miltertest fails a script that sends them.
if not mt.test_option(conn, SMFIP_NORCPT) then
  check(mt.rcptto(conn, "<rcpt@popgate.test>") == nil, "rcptto")
end
if from then
  for i = 1, tonumber(from_count or "1") do
    check(mt.header(conn, "From", from) == nil, "header From " .. i)
  end
end
for i = 1, 9 do
  local h = _G["hdr" .. i]
  if h then
    local name, value = string.match(h, "^([^:]+):%s*(.*)$")
    check(mt.header(conn, name, value) == nil, "header " .. name)
  end
end
check(mt.header(conn, "Subject", "miltertest") == nil, "header Subject")
if not mt.test_option(conn, SMFIP_NOEOH) then check(mt.eoh(conn) == nil, "eoh") end
if not mt.test_option(conn, SMFIP_NOBODY) then
  check(mt.bodystring(conn, "body line\r\n") == nil, "body")
end
check(mt.eom(conn) == nil, "eom")
expect(conn, at_eom, "end of message")
-- The reply's code, enhanced code and whole text. miltertest 2.11.0~beta2 (Debian 12)
-- has MT_SMTPREPLY at end of message only: MAIL FROM replies' texts are checked
-- through Postfix (milter_postfix_test).
if reply_code then
  check(mt.eom_check(conn, MT_SMTPREPLY, reply_code, reply_xcode, reply_text),
        "end of message: no reply " .. reply_code .. " " .. reply_xcode .. " " .. reply_text)
end

for name in string.gmatch(deleted or "", "[^,]+") do
  check(mt.eom_check(conn, MT_HDRDELETE, name), "header " .. name .. " was not deleted")
end
for name in string.gmatch(kept or "", "[^,]+") do
  check(not mt.eom_check(conn, MT_HDRDELETE, name), "header " .. name .. " was deleted")
end
if added then
  check(mt.eom_check(conn, MT_HDRADD, added), "header " .. added .. " was not added")
end
if quarantine == "yes" then
  check(mt.eom_check(conn, MT_QUARANTINE), "no quarantine requested")
end
mt.disconnect(conn)
