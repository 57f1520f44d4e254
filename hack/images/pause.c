/* The pod sandbox's process: holds the pod's namespaces, reaps orphans, and
 * exits on SIGINT or SIGTERM. Built with `gcc -static` into a one-layer image
 * (hack/images.sh), as the kubelet's pause image is upstream. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
  fprintf(stderr, "pause: shutting down on signal %d\n", sig);
  exit(0);
}

static void on_child(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    printf("pause (rolesanywhere-operator)\n");
    return 0;
  }
  if (getpid() != 1) fprintf(stderr, "pause: warning: not running as pid 1\n");
  struct sigaction stop = {.sa_handler = on_stop};
  struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP};
  if (sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGTERM, &stop, NULL) < 0 ||
      sigaction(SIGCHLD, &child, NULL) < 0) {
    perror("pause: sigaction");
    return 1;
  }
  for (;;) pause();
}
