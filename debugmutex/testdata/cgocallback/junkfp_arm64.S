// void callWithJunkFP(void (*fn)(void), uintptr_t junk)
// Calls fn with x29 (the frame pointer) = junk, as C code compiled with
// -fomit-frame-pointer may.
	.text
	.globl	callWithJunkFP
	.type	callWithJunkFP, %function
callWithJunkFP:
	stp	x29, x30, [sp, #-16]!
	mov	x29, x1
	blr	x0
	ldp	x29, x30, [sp], #16
	ret
	.size	callWithJunkFP, .-callWithJunkFP
	.section	.note.GNU-stack,"",@progbits
