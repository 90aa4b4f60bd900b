// C side of the cgocallback test program: calls the exported Go function
// goLockContended with junk in the frame-pointer register, from the thread
// of a Go goroutine (Go -> C -> Go) and from a thread C created (an extra M).
#include <pthread.h>
#include <stdint.h>
#include "_cgo_export.h"

// callWithJunkFP (junkfp_$GOARCH.S) calls fn with the frame-pointer
// register set to junk.
void callWithJunkFP(void (*fn)(void), uintptr_t junk);

void fromGoThread(uintptr_t junk) { callWithJunkFP(goLockContended, junk); }

static void *threadMain(void *arg) {
	callWithJunkFP(goLockContended, (uintptr_t)arg);
	return 0;
}

void fromCThread(uintptr_t junk) {
	pthread_t t;
	if (pthread_create(&t, 0, threadMain, (void *)junk) == 0) {
		pthread_join(t, 0);
	}
}
