# The docker wrapper waits (briefly) for an engine still starting.
docker version > /root/docker-version.txt
