echo hello > /hello.txt
rm -f /etc/os-release
