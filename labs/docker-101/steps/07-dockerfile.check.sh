# Passes when the image myweb:1.0 is built FROM httpd (httpd's layers are the first of its own,
# and it has more), and the container web runs it, publishes its port 80 on 8000, and serves
# /root/myweb/index.html as it is now (asked for up to about 4 s).
hint() { case "${PLAYGROUND_LAB_LANGUAGE:-}" in en) echo "$1" ;; ko) echo "$2" ;; *) echo "$1" && echo "$2" ;; esac; }
deadline=$(($(date +%s) + 4))
page() {
  until body=$(curl -fsS --max-time 1 "http://localhost:$1/" 2>/dev/null); do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.3
  done
  printf '%s\n' "$body"
}
layers() { docker image inspect --format '{{range .RootFS.Layers}}{{.}} {{end}}' "$1" 2>/dev/null; }
file=/root/myweb/index.html
build="cd ~/myweb && docker build --tag myweb:1.0 ."
run="docker run --publish 8000:80 --detach --name web myweb:1.0"
if [ ! -s "$file" ]; then
  hint "There is no ~/myweb/index.html yet: make the folder and write the page of this step." \
    "~/myweb/index.html 이 아직 없습니다. 폴더를 만들고 이 단계의 페이지를 쓰세요."
  exit 1
fi
mine=$(layers myweb:1.0)
if [ -z "$mine" ]; then
  hint "There is no image myweb:1.0 yet (docker image ls). Build it: $build" \
    "myweb:1.0 이미지가 아직 없습니다(docker image ls). 다음으로 빌드하세요: $build"
  exit 1
fi
base=$(layers httpd)
if [ -z "$base" ]; then
  hint "myweb:1.0 is here, but not the image httpd it is built from (docker image ls). Build again, which pulls it: $build" \
    "myweb:1.0 은 있지만 기반 이미지 httpd 가 없습니다(docker image ls). 다시 빌드하면 pull 해 옵니다: $build"
  exit 1
fi
case "$mine" in
  "$base"?*) ;;
  *)
    hint "myweb:1.0 is not built FROM httpd with a layer of its own. The Dockerfile's lines: FROM httpd, then COPY index.html /usr/local/apache2/htdocs/. Build again: $build" \
      "myweb:1.0 이 httpd 위에 레이어를 더해 빌드되지 않았습니다. Dockerfile 은 FROM httpd, 그리고 COPY index.html /usr/local/apache2/htdocs/ 두 줄입니다. 다시 빌드하세요: $build"
    exit 1
    ;;
esac
if ! docker inspect web >/dev/null 2>&1; then
  hint "The image is built. There is no container named web yet. Run: $run" \
    "이미지는 빌드되었습니다. 이름이 web 인 컨테이너가 아직 없습니다. 다음을 실행하세요: $run"
  exit 1
fi
image=$(docker inspect --format '{{.Config.Image}}' web)
image=${image#docker.io/}
image=${image#library/}
if [ "$image" != myweb:1.0 ]; then
  hint "web runs the image $image, not myweb:1.0. Remove it (docker rm -f web), then run: $run" \
    "web 컨테이너는 myweb:1.0 이 아니라 $image 이미지를 실행합니다. docker rm -f web 으로 지운 뒤 다음을 실행하세요: $run"
  exit 1
fi
if [ "$(docker inspect --format '{{.State.Running}}' web)" != true ]; then
  hint "web is not running (see its STATUS in docker ps -a). Start it: docker start web" \
    "web 컨테이너가 실행 중이 아닙니다(docker ps -a 의 STATUS 를 보세요). docker start web 으로 시작하세요."
  exit 1
fi
if ! docker port web 80/tcp 2>/dev/null | grep -q ':8000$'; then
  hint "web does not publish its port 80 on 8000 (docker port web). Remove it (docker rm -f web), then run: $run" \
    "web 컨테이너가 포트 80 을 8000 번 포트로 공개하지 않습니다(docker port web 으로 확인). docker rm -f web 으로 지운 뒤 다음을 실행하세요: $run"
  exit 1
fi
if ! body=$(page 8000); then
  hint "Nothing answers on localhost:8000 yet. Wait a moment and press Check again; docker logs web shows what Apache said." \
    "localhost:8000 에서 아직 답이 없습니다. 잠시 뒤 다시 확인을 누르세요. docker logs web 으로 아파치의 로그를 볼 수 있습니다."
  exit 1
fi
if [ "$body" != "$(cat "$file")" ]; then
  if echo "$body" | grep -q 'It works!'; then
    hint "localhost:8000 shows httpd's own \"It works!\" page, not yours: the COPY line must put index.html in /usr/local/apache2/htdocs/. Fix the Dockerfile, build again, then docker rm -f web and run it again." \
      "localhost:8000 에 내 페이지가 아니라 httpd 의 \"It works!\" 페이지가 보입니다. COPY 줄이 index.html 을 /usr/local/apache2/htdocs/ 에 넣어야 합니다. Dockerfile 을 고쳐 다시 빌드하고, docker rm -f web 후 다시 실행하세요."
  else
    hint "localhost:8000 does not serve ~/myweb/index.html as it is now. Changed the page after the build? An image does not change: build again ($build), then docker rm -f web and run it again." \
      "localhost:8000 의 페이지가 지금의 ~/myweb/index.html 과 다릅니다. 빌드한 뒤 페이지를 고쳤나요? 이미지는 변하지 않습니다. 다시 빌드하고($build), docker rm -f web 후 다시 실행하세요."
  fi
  exit 1
fi
hint "web serves your page from the image myweb:1.0, built FROM httpd." \
  "web 컨테이너가 httpd 로 빌드한 myweb:1.0 이미지에서 내 페이지를 보여 줍니다."
