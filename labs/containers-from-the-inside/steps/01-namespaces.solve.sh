ls -l /proc/self/ns > /root/namespaces.txt
