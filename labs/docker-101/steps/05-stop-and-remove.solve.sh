# docker rm -f kills at once (docker stop may wait up to 10 s for a server to end).
ids=$(docker ps -aq)
[ -z "$ids" ] || docker rm -f $ids >/dev/null
