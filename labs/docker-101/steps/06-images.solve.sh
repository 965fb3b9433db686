users=$(docker ps -aq --filter ancestor=httpd 2>/dev/null)
[ -z "$users" ] || docker rm -f $users >/dev/null
if docker image inspect httpd >/dev/null 2>&1; then
  docker image rm httpd >/dev/null
fi
