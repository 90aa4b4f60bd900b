#include "textflag.h"

// func getfp() unsafe.Pointer
// Returns the frame pointer (R29) of the calling function.
TEXT ·Getfp(SB),NOSPLIT|NOFRAME,$0-8
	MOVD R29, ret+0(FP)
	RET

// func getg() unsafe.Pointer
// Returns the current g: the g register (R28) always holds it in Go code.
TEXT ·getg(SB),NOSPLIT|NOFRAME,$0-8
	MOVD g, ret+0(FP)
	RET
