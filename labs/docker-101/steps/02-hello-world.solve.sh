docker run hello-world >/dev/null
