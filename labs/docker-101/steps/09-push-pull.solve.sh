registry=${PLAYGROUND_REGISTRY:?} ns=${PLAYGROUND_REGISTRY_USER:?}
image="$registry/$ns/myweb:1.0"
echo "${PLAYGROUND_REGISTRY_PASSWORD:?}" | docker login "$registry" -u "$ns" --password-stdin >/dev/null || exit 1
docker image inspect myweb:1.0 >/dev/null 2>&1 || docker tag "$image" myweb:1.0 2>/dev/null || exit 1
docker tag myweb:1.0 "$image" && docker push --quiet "$image" >/dev/null || exit 1
docker rm -f web >/dev/null 2>&1
docker rmi myweb:1.0 "$image" >/dev/null || exit 1
docker pull --quiet "$image" >/dev/null || exit 1
docker run --publish 8000:80 --detach --name web "$image" >/dev/null
