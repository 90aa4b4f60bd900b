#include "textflag.h"

// func getfp() unsafe.Pointer
// Returns the frame pointer of the calling function: this function has no
// frame of its own, so BP still holds the caller's.
TEXT ·Getfp(SB),NOSPLIT|NOFRAME,$0-8
	MOVQ BP, ret+0(FP)
	RET

// func getg() unsafe.Pointer
// Returns the current g, from thread-local storage (in ABI0 code, which
// this is, R14 is not guaranteed to hold g). As github.com/petermattis/goid.
TEXT ·getg(SB),NOSPLIT|NOFRAME,$0-8
	MOVQ (TLS), AX
	MOVQ AX, ret+0(FP)
	RET
