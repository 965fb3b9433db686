# Passes when /root/docker-version.txt holds the answer of `docker version` from both the
# client and the engine, and the engine's version in it is the one that answers now.
# Hints in the lab's language ($PLAYGROUND_LAB_LANGUAGE), in both when it is not set.
hint() { case "${PLAYGROUND_LAB_LANGUAGE:-}" in en) echo "$1" ;; ko) echo "$2" ;; *) echo "$1" && echo "$2" ;; esac; }
file=/root/docker-version.txt
if [ ! -s "$file" ]; then
  hint "There is no ~/docker-version.txt yet. Run: docker version | tee ~/docker-version.txt" \
    "~/docker-version.txt 파일이 아직 없습니다. docker version | tee ~/docker-version.txt 를 실행하세요."
  exit 1
fi
if ! grep -q '^Client' "$file"; then
  hint "~/docker-version.txt does not hold the answer of docker version. Run: docker version | tee ~/docker-version.txt" \
    "~/docker-version.txt 에 docker version 의 답이 없습니다. docker version | tee ~/docker-version.txt 를 실행하세요."
  exit 1
fi
if ! grep -q '^Server' "$file"; then
  hint "Only the client answered in ~/docker-version.txt: the engine was still starting. Wait a few seconds and run docker version | tee ~/docker-version.txt again." \
    "~/docker-version.txt 에 클라이언트만 답했습니다. 엔진이 아직 시작하는 중이었습니다. 몇 초 뒤 docker version | tee ~/docker-version.txt 를 다시 실행하세요."
  exit 1
fi
server=$(docker version --format '{{.Server.Version}}' 2>/dev/null)
if [ -z "$server" ]; then
  hint "The engine does not answer right now (docker version shows no Server). Wait a few seconds and press Check again." \
    "지금은 엔진이 답하지 않습니다(docker version 에 Server 가 없습니다). 몇 초 뒤 다시 확인을 누르세요."
  exit 1
fi
if ! grep -qF "$server" "$file"; then
  hint "~/docker-version.txt does not name the engine's version $server. Run docker version | tee ~/docker-version.txt again." \
    "~/docker-version.txt 에 지금 엔진의 버전($server)이 없습니다. docker version | tee ~/docker-version.txt 를 다시 실행하세요."
  exit 1
fi
hint "Both answered: the client and the engine (version $server)." \
  "클라이언트와 엔진(버전 $server)이 모두 답했습니다."
