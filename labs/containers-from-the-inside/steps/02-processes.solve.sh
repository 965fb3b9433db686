sleep 300 &
# Until the child has become `sleep` (right after the fork, ps still shows it as a shell).
tries=0
until ps -o args | grep -q '^[s]leep 300' || [ $tries -ge 500 ]; do tries=$((tries + 1)); done
ps -o pid,args > /root/processes.txt
kill $!
wait
exit 0
