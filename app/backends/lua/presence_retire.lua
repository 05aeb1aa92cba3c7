-- ARGV: worker -> changes from removing it
local out = {}
remove(out, ARGV[1])
return out
