-- release: ARGV order id. 1 on the call that released, 0 afterwards.
if release(ARGV[1]) then
  return 1
end
return 0
