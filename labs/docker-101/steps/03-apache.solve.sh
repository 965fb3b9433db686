docker rm -f apa02 >/dev/null 2>&1
docker run --name apa02 -d -p 8080:80 httpd >/dev/null
