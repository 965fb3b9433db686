docker rm -f apa03 apa04 apa05 nginx01 >/dev/null 2>&1
docker run --name apa03 -d -p 8081:80 httpd >/dev/null &&
  docker run --name apa04 -d -p 8082:80 httpd >/dev/null &&
  docker run --name apa05 -d -p 8083:80 httpd >/dev/null &&
  docker run --name nginx01 -d -p 8084:80 nginx >/dev/null
