docker rm -f writer reader >/dev/null 2>&1
docker run --name writer -v notes:/data busybox sh -c 'echo "Written by the first container" > /data/note.txt' || exit 1
docker rm writer >/dev/null
docker run --name reader -v notes:/data busybox cat /data/note.txt >/dev/null
