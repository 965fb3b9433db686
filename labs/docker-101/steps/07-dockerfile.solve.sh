mkdir -p /root/myweb && cd /root/myweb || exit 1
[ -s index.html ] || echo '<h1>Hello from my first image!</h1>' > index.html
printf 'FROM httpd\nCOPY index.html /usr/local/apache2/htdocs/\n' > Dockerfile
docker build --quiet --tag myweb:1.0 . >/dev/null || exit 1
docker rm -f web >/dev/null 2>&1
docker run --publish 8000:80 --detach --name web myweb:1.0 >/dev/null
