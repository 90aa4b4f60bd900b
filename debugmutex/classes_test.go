package debugmutex_test

import (
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

// Lock classes: an order taken on one instance and its inverse on another
// is a cycle of classes (the locks' declarations), reported though no
// instance cycle exists; the rules that keep correct code quiet hold for
// classes too.

type classBank struct{ accounts, ledger debugmutex.Mutex }

func (b *classBank) deposit() {
	b.accounts.Lock()
	b.ledger.Lock()
	b.ledger.Unlock()
	b.accounts.Unlock()
}

func (b *classBank) audit() {
	b.ledger.Lock()
	b.accounts.Lock()
	b.accounts.Unlock()
	b.ledger.Unlock()
}

// lockOrderReports returns the lock-order reports among rs.
func lockOrderReports(rs []report.Report) []report.Report {
	var out []report.Report
	for _, r := range rs {
		if r.Kind == report.KindLockOrder {
			out = append(out, r)
		}
	}
	return out
}

func TestClassInversionOnTwoInstancesIsReported(t *testing.T) {
	w := watchReports(t)
	b1, b2 := &classBank{}, &classBank{}
	b1.deposit() // one test's Bank
	b2.audit()   // another test's, its own Bank
	rs := lockOrderReports(w.all())
	if len(rs) != 1 {
		t.Fatalf("lock-order reports = %d, want 1:\n%v", len(rs), rs)
	}
	r := rs[0]
	for _, want := range []string{"lock classes", "classBank.accounts", "classBank.ledger", "any classBank on which both run at once deadlocks"} {
		if !strings.Contains(r.Summary, want) {
			t.Errorf("summary %q lacks %q", r.Summary, want)
		}
	}
	if len(r.Edges) != 2 || len(r.Locks) != 4 {
		t.Fatalf("edges %d, locks %d: want 2 edges over 4 instances:\n%s", len(r.Edges), len(r.Locks), r.String())
	}
	for _, e := range r.Edges {
		if !strings.Contains(e.From, "class github.com/lockscope/lockscope/debugmutex_test.classBank.") || len(e.FromStack) == 0 || len(e.ToStack) == 0 {
			t.Errorf("edge %s -> %s: want the class with its package path and both stacks", e.From, e.To)
		}
	}
}

type oneBank struct{ accounts, ledger debugmutex.Mutex }

func (b *oneBank) deposit() {
	b.accounts.Lock()
	b.ledger.Lock()
	b.ledger.Unlock()
	b.accounts.Unlock()
}

func (b *oneBank) audit() {
	b.ledger.Lock()
	b.accounts.Lock()
	b.accounts.Unlock()
	b.ledger.Unlock()
}

func TestClassInversionOnOneInstanceIsOneReport(t *testing.T) {
	w := watchReports(t)
	b := &oneBank{}
	b.deposit()
	b.audit() // the instance graph reports it; the class graph does not again
	if rs := lockOrderReports(w.all()); len(rs) != 1 || strings.Contains(rs[0].Summary, "lock classes") {
		t.Fatalf("want the one instance report, got %d:\n%v", len(rs), rs)
	}
	// The same inversion on other instances is the same problem.
	(&oneBank{}).deposit()
	(&oneBank{}).audit()
	if rs := lockOrderReports(w.all()); len(rs) != 1 {
		t.Fatalf("want still the one report, got %d:\n%v", len(rs), rs)
	}
}

type classesFirstBank struct{ accounts, ledger debugmutex.Mutex }

func (b *classesFirstBank) deposit() {
	b.accounts.Lock()
	b.ledger.Lock()
	b.ledger.Unlock()
	b.accounts.Unlock()
}

func (b *classesFirstBank) audit() {
	b.ledger.Lock()
	b.accounts.Lock()
	b.accounts.Unlock()
	b.ledger.Unlock()
}

func TestAnInstanceCycleAfterItsClassReportIsNoSecondReport(t *testing.T) {
	w := watchReports(t)
	(&classesFirstBank{}).deposit()
	(&classesFirstBank{}).audit() // the class report
	b := &classesFirstBank{}
	b.deposit()
	b.audit() // the same problem on one instance
	if rs := lockOrderReports(w.all()); len(rs) != 1 || !strings.Contains(rs[0].Summary, "lock classes") {
		t.Fatalf("want the one class report, got %d:\n%v", len(rs), rs)
	}
}

// boltLike has bbolt's DB locks: Close takes metalock then mmaplock under
// rwlock; a write transaction begun under a read one takes mmaplock, then
// rwlock, then metalock. Both orders of metalock and mmaplock hold rwlock:
// on one DB they cannot both be in place at once.
type boltLike struct {
	rwlock, metalock debugmutex.Mutex
	mmaplock         debugmutex.Mutex
}

func (db *boltLike) close() {
	db.rwlock.Lock()
	db.metalock.Lock()
	db.mmaplock.Lock()
	db.mmaplock.Unlock()
	db.metalock.Unlock()
	db.rwlock.Unlock()
}

func (db *boltLike) writeUnderRead() {
	db.mmaplock.Lock()
	db.rwlock.Lock()
	db.metalock.Lock()
	db.metalock.Unlock()
	db.rwlock.Unlock()
	db.mmaplock.Unlock()
}

func TestAClassWriteHeldWithEveryEdgeKeepsTheClassCycleQuiet(t *testing.T) {
	w := watchReports(t)
	(&boltLike{}).close()
	(&boltLike{}).writeUnderRead()
	for _, r := range lockOrderReports(w.all()) {
		if strings.Contains(r.Summary, "lock classes") && strings.Contains(r.Summary, "boltLike.metalock") && !strings.Contains(r.Summary, "rwlock") {
			t.Errorf("metalock <-> mmaplock reported, which rwlock rules out:\n%s", r.String())
		}
	}
	// rwlock <-> mmaplock is a real inversion of classes (Close against a
	// transaction begun under another), and is reported.
	if rs := lockOrderReports(w.all()); len(rs) != 1 || !strings.Contains(rs[0].Summary, "boltLike.rwlock") {
		t.Fatalf("want the one rwlock/mmaplock class report, got %d:\n%v", len(rs), rs)
	}
}

type classCache struct {
	mu      debugmutex.Mutex
	entries []*classEntry
}

type classEntry struct{ mu debugmutex.Mutex }

// get locks the cache, then an entry.
func (c *classCache) get(i int) {
	c.mu.Lock()
	c.entries[i].touch()
	c.mu.Unlock()
}

func (e *classEntry) touch() {
	e.mu.Lock()
	e.mu.Unlock()
}

// evict locks an entry, then its cache.
func (e *classEntry) evict(c *classCache) {
	e.mu.Lock()
	c.mu.Lock()
	c.mu.Unlock()
	e.mu.Unlock()
}

func TestClassCycleThroughTwoTypesIsLeftToTheInstanceGraph(t *testing.T) {
	// A cache then an entry on one cache, an entry then its cache on
	// another: classes of two types pair objects the classes cannot tell
	// apart (goleveldb's block and table caches share their bucket type),
	// so the class graph does not report it; on one cache, the instance
	// graph does.
	w := watchReports(t)
	c1, c2 := &classCache{entries: []*classEntry{{}}}, &classCache{entries: []*classEntry{{}}}
	c1.get(0)
	c2.entries[0].evict(c2)
	w.assertSilent(t)
	c1.entries[0].evict(c1)
	if rs := lockOrderReports(w.all()); len(rs) != 1 || strings.Contains(rs[0].Summary, "lock classes") {
		t.Fatalf("want the one instance report on c1, got %d:\n%v", len(rs), rs)
	}
}

type classAccount struct {
	id int
	mu debugmutex.Mutex
}

// classTransfer locks two accounts in id order: one class, nested in itself.
func classTransfer(a, b *classAccount) {
	if b.id < a.id {
		a, b = b, a
	}
	a.mu.Lock()
	b.mu.Lock()
	b.mu.Unlock()
	a.mu.Unlock()
}

type classNode struct {
	mu   debugmutex.Mutex
	next *classNode
}

type gatedBank struct {
	mu                debugmutex.Mutex
	accounts, ledger  debugmutex.Mutex
	onlyOneAtATimeTag int
}

func TestClassRulesKeepCorrectCodeQuiet(t *testing.T) {
	t.Run("same-type locks ordered by id", func(t *testing.T) {
		w := watchReports(t)
		accs := []*classAccount{{id: 1}, {id: 2}, {id: 3}}
		classTransfer(accs[0], accs[1])
		classTransfer(accs[2], accs[1])
		classTransfer(accs[0], accs[2])
		w.assertSilent(t)
	})
	t.Run("hand-over-hand down a list", func(t *testing.T) {
		w := watchReports(t)
		list := &classNode{next: &classNode{next: &classNode{}}}
		n := list
		n.mu.Lock()
		for n.next != nil {
			n.next.mu.Lock()
			n.mu.Unlock()
			n = n.next
		}
		n.mu.Unlock()
		w.assertSilent(t)
	})
	t.Run("a gate held by both orders", func(t *testing.T) {
		w := watchReports(t)
		b1, b2 := &gatedBank{}, &gatedBank{}
		b1.mu.Lock()
		b1.accounts.Lock()
		b1.ledger.Lock()
		b1.ledger.Unlock()
		b1.accounts.Unlock()
		b1.mu.Unlock()
		b2.mu.Lock()
		b2.ledger.Lock()
		b2.accounts.Lock()
		b2.accounts.Unlock()
		b2.ledger.Unlock()
		b2.mu.Unlock()
		w.assertSilent(t)
	})
	t.Run("one consistent order on per-test objects", func(t *testing.T) {
		w := watchReports(t)
		for range 3 {
			(&classBank{}).deposit()
		}
		w.assertSilent(t)
	})
	t.Run("a hold handed off to another goroutine", func(t *testing.T) {
		w := watchReports(t)
		b1, b2 := &classBank{}, &classBank{}
		b1.ledger.Lock() // ledger, then accounts, but ledger is a baton
		b1.accounts.Lock()
		b1.accounts.Unlock()
		var wg sync.WaitGroup
		wg.Go(b1.ledger.Unlock) // released by another goroutine: no dependency
		wg.Wait()
		b2.deposit()
		w.assertSilent(t)
	})
	t.Run("a class split with SetClass", func(t *testing.T) {
		w := watchReports(t)
		// A parent and a child of one type, whose order is by design: the
		// child's lock gets a class of its own before first use, and the
		// orders parent -> child and, on another tree, child' -> parent'
		// (with child' also split) stay consistent per class.
		p1, c1 := &classNode{}, &classNode{}
		debugmutex.SetClass(&c1.mu, "tree.child")
		p1.mu.Lock()
		c1.mu.Lock()
		c1.mu.Unlock()
		p1.mu.Unlock()
		p2, c2 := &classNode{}, &classNode{}
		debugmutex.SetClass(&c2.mu, "tree.child")
		p2.mu.Lock()
		c2.mu.Lock()
		c2.mu.Unlock()
		p2.mu.Unlock()
		w.assertSilent(t)
	})
}

func TestSetClassMergesDeclarationsIntoOneClass(t *testing.T) {
	w := watchReports(t)
	// Two declarations made one class: an inversion between them and a
	// third class is found across instances.
	b1, b2 := &classBank{}, &classBank{}
	const money = "github.com/lockscope/lockscope/debugmutex_test.classBank.money"
	debugmutex.SetClass(&b1.accounts, money)
	debugmutex.SetClass(&b2.ledger, money)
	b1.accounts.Lock() // money -> classBank.ledger
	b1.ledger.Lock()
	b1.ledger.Unlock()
	b1.accounts.Unlock()
	b2.ledger.Lock() // money -> classBank.accounts: no cycle yet
	b2.accounts.Lock()
	b2.accounts.Unlock()
	b2.ledger.Unlock()
	w.assertSilent(t)
	b3 := &classBank{}
	debugmutex.SetClass(&b3.accounts, money)
	b3.ledger.Lock() // classBank.ledger -> money: closes money -> ledger -> money
	b3.accounts.Lock()
	b3.accounts.Unlock()
	b3.ledger.Unlock()
	if rs := lockOrderReports(w.all()); len(rs) != 1 || !strings.Contains(rs[0].Summary, "classBank.money") {
		t.Fatalf("want one class report through class money, got %d:\n%v", len(rs), rs)
	}
}

type namedBank struct{ accounts, ledger debugmutex.Mutex }

func (b *namedBank) deposit() {
	b.accounts.Lock()
	b.ledger.Lock()
	b.ledger.Unlock()
	b.accounts.Unlock()
}

func (b *namedBank) audit() {
	b.ledger.Lock()
	b.accounts.Lock()
	b.accounts.Unlock()
	b.ledger.Unlock()
}

// lockscope test names every package-level lock with SetName before its
// first use; a lock named so still has its declaration's class, taken at
// its first site.
func TestALockNamedBeforeItsFirstUseKeepsItsClass(t *testing.T) {
	w := watchReports(t)
	b1, b2 := &namedBank{}, &namedBank{}
	for i, b := range []*namedBank{b1, b2} {
		debugmutex.SetName(&b.accounts, "accounts-"+string(rune('1'+i)))
		debugmutex.SetName(&b.ledger, "ledger-"+string(rune('1'+i)))
	}
	b1.deposit()
	b2.audit()
	rs := lockOrderReports(w.all())
	if len(rs) != 1 || !strings.Contains(rs[0].Summary, "lock classes") {
		t.Fatalf("lock-order reports = %v, want 1 class report", rs)
	}
	for _, l := range rs[0].Locks {
		if !strings.HasPrefix(l.Class, "github.com/lockscope/lockscope/debugmutex_test.namedBank.") {
			t.Errorf("lock %s has class %q, want its declaration's", l.Name, l.Class)
		}
	}
}

// rwPair's two orders: the RWMutex write-held then the Mutex, and the
// Mutex then a read of the RWMutex. On one rwPair they deadlock: the read
// waits for the write hold.
type rwPair struct {
	rw debugmutex.RWMutex
	mu debugmutex.Mutex
}

func (p *rwPair) writeThenLock() {
	p.rw.Lock()
	p.mu.Lock()
	p.mu.Unlock()
	p.rw.Unlock()
}

func (p *rwPair) lockThenRead() {
	p.mu.Lock()
	p.rw.RLock()
	p.rw.RUnlock()
	p.mu.Unlock()
}

func (p *rwPair) readThenLock() {
	p.rw.RLock()
	p.mu.Lock()
	p.mu.Unlock()
	p.rw.RUnlock()
}

func TestReadWriteClassCycleIsReported(t *testing.T) {
	w := watchReports(t)
	(&rwPair{}).writeThenLock()
	(&rwPair{}).lockThenRead()
	rs := lockOrderReports(w.all())
	if len(rs) != 1 || !strings.Contains(rs[0].Summary, "lock classes") || !strings.Contains(rs[0].Summary, "rwPair.rw") {
		t.Fatalf("want one class report of rwPair.rw and rwPair.mu, got %d:\n%v", len(rs), rs)
	}
}

func TestReadClassCycleWithoutAWriteHoldIsLeftToTheInstanceGraph(t *testing.T) {
	w := watchReports(t)
	// Both orders read rw: on one rwPair they deadlock only if a writer
	// queues on rw between them, which the classes cannot tell.
	(&rwPair{}).readThenLock()
	(&rwPair{}).lockThenRead()
	if rs := lockOrderReports(w.all()); len(rs) != 0 {
		t.Fatalf("class report of two reads:\n%v", rs)
	}
}

// boltRW has bbolt's DB locks as they are: mmaplock an RWMutex that a read
// transaction read-holds from beginTx to its end.
type boltRW struct {
	rwlock, metalock debugmutex.Mutex
	mmaplock         debugmutex.RWMutex
}

// readTx is beginTx: metalock, then mmaplock read-held for the transaction.
func (db *boltRW) readTx(inside func()) {
	db.metalock.Lock()
	db.mmaplock.RLock()
	db.metalock.Unlock()
	inside()
	db.mmaplock.RUnlock()
}

// writeTx is beginRWTx: rwlock, then metalock.
func (db *boltRW) writeTx() {
	db.rwlock.Lock()
	db.metalock.Lock()
	db.metalock.Unlock()
	db.rwlock.Unlock()
}

// close takes rwlock, metalock, then mmaplock for writing.
func (db *boltRW) close() {
	db.rwlock.Lock()
	db.metalock.Lock()
	db.mmaplock.Lock()
	db.mmaplock.Unlock()
	db.metalock.Unlock()
	db.rwlock.Unlock()
}

func TestBoltsReadAndWriteEdgesAreJudgedApart(t *testing.T) {
	w := watchReports(t)
	(&boltRW{}).close()
	db := &boltRW{}
	db.readTx(db.writeTx) // a write transaction begun under a read one
	(&boltRW{}).readTx(func() {})
	rs := lockOrderReports(w.all())
	for _, r := range rs {
		if strings.Contains(r.Summary, "boltRW.metalock") && !strings.Contains(r.Summary, "boltRW.rwlock") {
			t.Errorf("metalock <-> mmaplock reported: the read edge's mmaplock is read-held, the write edge is under rwlock:\n%s", r.String())
		}
	}
	// rwlock -> mmaplock (Close, for writing) against mmaplock -> rwlock
	// (a write transaction under a read one): true, as in bbolt's README.
	if len(rs) != 1 || !strings.Contains(rs[0].Summary, "boltRW.rwlock") || !strings.Contains(rs[0].Summary, "boltRW.mmaplock") {
		t.Fatalf("want the one rwlock/mmaplock report, got %d:\n%v", len(rs), rs)
	}
}

// A field reached through a map value is its field's class: logFile.lock
// and logFile.sync on one file, the reverse on another.
type classLogFile struct{ lock, sync debugmutex.Mutex }

type classLogs struct {
	files map[string]*classLogFile
}

func (l *classLogs) rotate(id string) {
	lf := l.files[id]
	lf.lock.Lock()
	lf.sync.Lock()
	lf.sync.Unlock()
	lf.lock.Unlock()
}

func (l *classLogs) flushAll() {
	for _, lf := range l.files {
		lf.sync.Lock()
		lf.lock.Lock()
		lf.lock.Unlock()
		lf.sync.Unlock()
	}
}

func TestClassOfAFieldReachedThroughAMapValue(t *testing.T) {
	w := watchReports(t)
	a := &classLogs{files: map[string]*classLogFile{"a": {}}}
	b := &classLogs{files: map[string]*classLogFile{"b": {}}}
	a.rotate("a")
	b.flushAll()
	rs := lockOrderReports(w.all())
	if len(rs) != 1 || !strings.Contains(rs[0].Summary, "classLogFile.lock -> classLogFile.sync") && !strings.Contains(rs[0].Summary, "classLogFile.sync -> classLogFile.lock") ||
		!strings.Contains(rs[0].Summary, "any classLogFile on which both run at once deadlocks") {
		t.Fatalf("want one class report on classLogFile's fields, got %d:\n%v", len(rs), rs)
	}
}

// Locals of a function are classes (named by the declaration, so a test's
// var mu reads TestX.mu, not its first acquire site), but a cycle of
// locals' classes is no report: each call's locks are its own, and opposite
// orders in two calls share no lock.
func localOrders(first bool) {
	var a, b debugmutex.Mutex
	x, y := &a, &b
	if !first {
		x, y = y, x
	}
	x.Lock()
	y.Lock()
	y.Unlock()
	x.Unlock()
}

func TestLocalsAreNamedByDeclarationAndTheirClassCyclesAreNotReported(t *testing.T) {
	w := watchReports(t)
	localOrders(true)
	localOrders(false)
	w.assertSilent(t)

	// A held local is named by its declaration in reports.
	var mu debugmutex.Mutex
	mu.Lock()
	done := make(chan struct{})
	go func() {
		mu.Lock() // waits: the test unlocks after a snapshot names the lock
		mu.Unlock()
		close(done)
	}()
	var name string
	for name == "" {
		for _, wt := range inspect.Snapshot().Waiting {
			if strings.Contains(wt.Site.Function, "TestLocalsAreNamedByDeclaration") { // not other tests' goroutines
				name = wt.Lock.Name
			}
		}
		runtime.Gosched()
	}
	mu.Unlock()
	<-done
	if want := "TestLocalsAreNamedByDeclarationAndTheirClassCyclesAreNotReported.mu"; name != want {
		t.Errorf("the waited-for local is named %q, want %q", name, want)
	}
}
