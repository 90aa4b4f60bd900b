// Browser test of the /debug/locks/ page during a deadlock, run by
// ../browser.sh: LOCKS_URL is the page of `examples/service -deadlock`, in
// which two goroutines deadlock on accounts.mu and ledger.mu.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { launch, screenshot, bodyText } = require('./lib.cjs');

const locks = process.env.LOCKS_URL;

test('/debug/locks/ shows the deadlock: report first, wait-for graph, lock pages, refresh', async (t) => {
	assert.ok(locks, 'LOCKS_URL must be set');
	const browser = await launch();
	t.after(() => browser.close());
	const page = await browser.newPage();
	await page.setViewport({ width: 1200, height: 1300 });

	// The deadlock report is found by the watchdog: reload until it is there.
	let found = false;
	for (let i = 0; i < 50 && !found; i++) {
		await page.goto(locks, { waitUntil: 'load' });
		found = (await page.$('.report[data-kind="deadlock"]')) !== null;
		if (!found) await new Promise((r) => setTimeout(r, 200)); // the watchdog's next round
	}
	assert.ok(found, 'no deadlock report on the page');

	// Reports come first, then the graph, then the tables.
	const order = await page.$$eval('h2', (hs) => hs.map((h) => h.id));
	assert.deepStrictEqual(order.slice(0, 3), ['reports', 'graph', 'waiting'], `sections ${order}`);
	const report = await page.$eval('.report[data-kind="deadlock"]', (el) => el.innerText);
	assert.match(report, /goroutine \d+ waits for write lock (accounts|ledger)\.mu held by goroutine \d+/);
	assert.match(report, /main\.transfer/, 'the report shows the goroutines\' stacks');

	// The wait-for graph: two goroutines and two locks on a red cycle.
	const graph = await page.$eval('svg#waitfor', (svg) => ({
		nodes: [...svg.querySelectorAll('g.node text')].map((n) => n.textContent),
		hot: svg.querySelectorAll('g.edge.hot').length,
		box: svg.getBoundingClientRect().toJSON(),
	}));
	assert.ok(graph.nodes.includes('accounts.mu') && graph.nodes.includes('ledger.mu'), `graph nodes ${graph.nodes}`);
	assert.strictEqual(graph.nodes.filter((n) => n.startsWith('goroutine ')).length, 2, `graph nodes ${graph.nodes}`);
	assert.strictEqual(graph.hot, 4, 'the cycle: 4 red edges');
	assert.ok(graph.box.width > 100 && graph.box.height > 100, `the graph is drawn: ${JSON.stringify(graph.box)}`);
	assert.match(await page.$eval('#graph', (h) => h.innerText), /deadlock/);

	// No negative duration anywhere; the deadlocked locks are among the worst.
	const text = await bodyText(page);
	assert.doesNotMatch(text, /-\d+(\.\d+)?(ns|µs|ms|s)\b/, 'a negative duration on the page');
	const worst = await page.$$eval('#locks + table tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.innerText)));
	const acct = worst.find((r) => r[0] === 'accounts.mu');
	assert.ok(acct, 'accounts.mu is not among the worst locks');
	assert.strictEqual(acct[4], '1', `accounts.mu waiting now: ${acct}`);
	await screenshot(page, 'locks-deadlock.png', { fullPage: true });

	// The lock's own page: its holder and its waiter.
	await Promise.all([page.waitForNavigation(), page.click('#locks + table a[href="?lock=accounts.mu"]')]);
	const lockPage = await bodyText(page);
	assert.match(lockPage, /Lock accounts\.mu/);
	assert.match(lockPage, /goroutine \d+ holds it \(write\)/);
	assert.match(lockPage, /goroutine \d+ waits \(write\) for .*held by goroutine \d+/);
	assert.match(lockPage, /main\.transfer/);

	// Auto-refresh: the page reloads by itself, with a later time.
	const before = await page.$eval('nav', (n) => n.innerText);
	await Promise.all([page.waitForNavigation(), page.click('nav a[href*="refresh=2"]')]);
	assert.match(page.url(), /lock=accounts\.mu&refresh=2/);
	const t0 = await page.$eval('nav', (n) => n.innerText);
	await page.waitForNavigation({ timeout: 10000 }); // the meta refresh
	const t1 = await page.$eval('nav', (n) => n.innerText);
	assert.notStrictEqual(t1, t0, 'the refreshed page shows a later time');
	assert.notStrictEqual(t0, before);
});
