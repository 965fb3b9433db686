# Passes when the engine is logged in to the session registry, the registry holds NS/myweb:1.0,
# myweb:1.0 is gone from the engine, the engine has REGISTRY/NS/myweb:1.0 with the registry's
# digest and pulled (an image docker pulled has no tag time: one tagged here and kept has), and
# the container web runs it on 8000.
hint() { case "${PLAYGROUND_LAB_LANGUAGE:-}" in en) echo "$1" ;; ko) echo "$2" ;; *) echo "$1" && echo "$2" ;; esac; }
registry=${PLAYGROUND_REGISTRY:-} ns=${PLAYGROUND_REGISTRY_USER:-}
if [ -z "$registry" ] || [ -z "$ns" ]; then
  hint "This check did not get the session registry's address and user (PLAYGROUND_REGISTRY): this Playground is older than the lab." \
    "이 확인 스크립트가 세션 레지스트리의 주소와 사용자(PLAYGROUND_REGISTRY)를 받지 못했습니다. 이 Playground 가 실습보다 오래된 버전입니다."
  exit 1
fi
image="$registry/$ns/myweb:1.0"
if ! grep -q "\"$registry\"" /root/.docker/config.json 2>/dev/null; then
  hint "The engine is not logged in to $registry yet. Run docker login $registry with the user and password of the Registry panel." \
    "아직 $registry 에 로그인하지 않았습니다. 레지스트리 패널의 사용자와 비밀번호로 docker login $registry 를 실행하세요."
  exit 1
fi
digest=$(curl -fsS -o /dev/null -D - -u "$ns:${PLAYGROUND_REGISTRY_PASSWORD:?}" \
  -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
  "http://$registry/v2/$ns/myweb/manifests/1.0" 2>/dev/null | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
if [ -z "$digest" ]; then
  hint "The registry has no $ns/myweb:1.0 yet. Tag your image and push it: docker tag myweb:1.0 $image, then docker push $image" \
    "레지스트리에 아직 $ns/myweb:1.0 이 없습니다. 이미지에 태그를 붙여 push 하세요: docker tag myweb:1.0 $image, 그리고 docker push $image"
  exit 1
fi
if docker image inspect myweb:1.0 >/dev/null 2>&1; then
  hint "Pushed. Now remove the image from the engine (docker rm -f web, then docker rmi myweb:1.0 $image), and pull it back: docker pull $image" \
    "push 했습니다. 이제 엔진에서 이미지를 지우고(docker rm -f web 후 docker rmi myweb:1.0 $image) 다시 가져오세요: docker pull $image"
  exit 1
fi
if ! docker image inspect --format '{{range .RepoDigests}}{{.}} {{end}}' "$image" 2>/dev/null | grep -q "@$digest "; then
  hint "myweb:1.0 is removed. Pull it back from the registry: docker pull $image" \
    "myweb:1.0 을 지웠습니다. 레지스트리에서 다시 가져오세요: docker pull $image"
  exit 1
fi
case "$(docker image inspect --format '{{.Metadata.LastTagTime}}' "$image")" in
  0001-01-01*) ;;
  *)
    hint "$image is still the image you tagged here, not one pulled back: remove it too (docker rm -f web, then docker rmi $image) and pull it: docker pull $image" \
      "$image 은 여기서 태그를 붙인 그 이미지이고, 다시 pull 한 이미지가 아닙니다. 이것도 지우고(docker rm -f web 후 docker rmi $image) 가져오세요: docker pull $image"
    exit 1
    ;;
esac
run="docker run --publish 8000:80 --detach --name web $image"
running=$(docker inspect --format '{{.State.Running}} {{.Config.Image}}' web 2>/dev/null)
if [ "$running" != "true $image" ]; then
  hint "The image is back. Run it as web again (docker rm -f web if one is left): $run" \
    "이미지가 돌아왔습니다. 다시 web 으로 실행하세요(남은 web 이 있으면 docker rm -f web): $run"
  exit 1
fi
hint "Pushed, removed and pulled back: web runs $image from the session registry." \
  "push 하고, 지우고, 다시 pull 했습니다. web 컨테이너가 세션 레지스트리의 $image 를 실행합니다."
