#include "textflag.h"

// func getfp() uintptr
// Returns the frame pointer (R29) of the calling function.
TEXT ·getfp(SB),NOSPLIT|NOFRAME,$0-8
	MOVD R29, ret+0(FP)
	RET
