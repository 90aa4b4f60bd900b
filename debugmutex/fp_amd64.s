#include "textflag.h"

// func getfp() uintptr
// Returns the frame pointer of the calling function: this function has no
// frame of its own, so BP still holds the caller's.
TEXT ·getfp(SB),NOSPLIT|NOFRAME,$0-8
	MOVQ BP, ret+0(FP)
	RET
