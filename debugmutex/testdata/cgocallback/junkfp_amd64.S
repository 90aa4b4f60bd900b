// void callWithJunkFP(void (*fn)(void), uintptr_t junk)
// Calls fn with %rbp = junk, as C code compiled with -fomit-frame-pointer
// may (there %rbp is a general-purpose register).
	.text
	.globl	callWithJunkFP
	.type	callWithJunkFP, @function
callWithJunkFP:
	pushq	%rbp		// callee-saved; also realigns the stack to 16
	movq	%rsi, %rbp
	call	*%rdi
	popq	%rbp
	ret
	.size	callWithJunkFP, .-callWithJunkFP
	.section	.note.GNU-stack,"",@progbits
