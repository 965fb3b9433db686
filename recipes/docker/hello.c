/* hello-world for Playground's docker image: the program `docker run hello-world` runs.
 *
 * Built at image build time (recipes/docker.toml, [[programs]]) with gcc -static -Os -s and
 * wrapped into a one-layer Docker image that the sandbox's engine loads at start, so that it
 * works offline. It only writes its text: no libc beyond write(2), no files, no network.
 */
#include <string.h>
#include <unistd.h>

static const char message[] =
    "\n"
    "Hello from Docker, inside your Playground sandbox!\n"
    "This message shows that the Docker engine in this sandbox works. To show it:\n"
    " 1. The Docker client (docker) contacted the Docker daemon (dockerd) running in your sandbox.\n"
    " 2. The daemon found the \"hello-world\" image in its own store: Playground loaded it\n"
    "    when your sandbox started, from /usr/share/playground/images (no internet needed).\n"
    " 3. The daemon created a new container from that image, which runs this small program.\n"
    " 4. The daemon streamed its output to the Docker client, which sent it to your terminal.\n"
    "To see what is left of it: docker ps -a, docker images.\n"
    "\n";

int main(void) {
    const char *next = message;
    size_t left = sizeof message - 1;
    while (left > 0) {
        ssize_t written = write(STDOUT_FILENO, next, left);
        if (written <= 0) {
            return 1;
        }
        next += written;
        left -= (size_t)written;
    }
    return 0;
}
