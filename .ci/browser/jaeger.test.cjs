// Browser tests of what lockscope shows a person, run by ../browser.sh with
// node's test runner: Jaeger's UI with a request that waited for a lock.
// Environment: JAEGER_URL (Jaeger's UI), SERVICE (the service whose traces
// to find), CHROMIUM (the browser), SCREENSHOT_DIR (optional: where to save
// docs/jaeger-trace.png).
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { launch, screenshot, bodyText } = require('./lib.cjs');

const jaeger = process.env.JAEGER_URL;
const service = process.env.SERVICE;

// Jaeger UI's duration format (utils/date.tsx formatDuration): µs under a
// millisecond, then ms, then s, rounded to 2 decimals.
function jaegerUnits(us) {
	if (us < 1000) return { value: us, unit: 'μs' };
	if (us < 1000000) return { value: us / 1000, unit: 'ms' };
	return { value: us / 1000000, unit: 's' };
}

test('Jaeger UI: a request trace with a lock wait under the request span', async (t) => {
	assert.ok(jaeger && service, 'JAEGER_URL and SERVICE must be set');
	const browser = await launch();
	t.after(() => browser.close());
	const page = await browser.newPage();
	await page.setViewport({ width: 1400, height: 1000 });

	// Find the service, as a person would: the search form.
	await page.goto(jaeger + '/search', { waitUntil: 'networkidle0' });
	await page.click('div[name="service"]');
	await page.keyboard.type(service);
	await page.keyboard.press('Enter');
	await page.waitForFunction(
		(s) => document.querySelector('div[name="service"]').textContent.includes(s), {}, service);
	// Only traces that have a lockscope span on cache.mu.
	await page.type('input[name="tags"]', 'lockscope.lock.name=cache.mu');
	const [find] = await page.$$('xpath/.//button[.//span[text()="Find Traces"]]');
	assert.ok(find, 'no Find Traces button');
	await find.click();
	await page.waitForSelector('a[href*="/trace/"]', { timeout: 30000 });

	// Open the trace whose wait is longest: a request that surely waited.
	const hrefs = (await page.$$eval('a[href*="/trace/"]', (as) => [...new Set(as.map((a) => a.getAttribute('href')))]))
		.filter((h) => /\/trace\/[0-9a-f]{16,32}\b/.test(h));
	assert.ok(hrefs.length > 0, 'no trace in the search results');
	let best = null;
	for (const href of hrefs) {
		const id = href.split('/trace/')[1].split(/[?#]/)[0];
		const res = await fetch(jaeger + '/api/traces/' + id);
		const tr = (await res.json()).data[0];
		const byID = new Map(tr.spans.map((s) => [s.spanID, s]));
		for (const s of tr.spans) {
			if (s.operationName !== 'lockscope.wait cache.mu') continue;
			const up = s.references.find((r) => r.refType === 'CHILD_OF');
			const parent = up ? byID.get(up.spanID) : null;
			if (!parent || parent.operationName !== 'GET /item/{key}') continue;
			// The holder's request: a reference to it, in another trace.
			const holder = s.references.find((r) => r.refType === 'FOLLOWS_FROM' && r.traceID !== tr.traceID);
			if (!holder) continue;
			if (!best || s.duration > best.wait.duration) best = { href, id, wait: s, parent, holder };
		}
	}
	assert.ok(best, 'no search result has a lockscope.wait cache.mu span under a GET /item/{key} span, with a reference to the holding request');

	const results = await bodyText(page);
	assert.match(results, new RegExp(service + ': GET /item/\\{key\\}'), 'the results list the request traces');

	await Promise.all([
		page.waitForNavigation({ waitUntil: 'networkidle0' }),
		page.click(`a[href="${best.href}"]`),
	]);
	await page.waitForFunction(() => document.body.innerText.includes('lockscope.wait cache.mu'), { timeout: 30000 });
	const text = await bodyText(page);
	assert.ok(text.includes('GET /item/{key}'), 'the trace shows the request span');
	assert.ok(text.includes('lockscope.wait cache.mu'), 'the trace shows the wait span, named after its lock');

	// The wait's row: its name and its duration as Jaeger prints it.
	const rowLabel = await page.evaluate(() => {
		for (const row of document.querySelectorAll('.span-row')) {
			if (!row.innerText.includes('lockscope.wait cache.mu')) continue;
			const label = row.querySelector('.SpanBar--label');
			return label ? label.innerText : row.innerText;
		}
		return null;
	});
	assert.ok(rowLabel, 'no span row for lockscope.wait cache.mu');
	const m = /([\d.]+)\s*(μs|ms|s)/.exec(rowLabel);
	assert.ok(m, `the wait's row shows no duration: ${JSON.stringify(rowLabel)}`);
	const want = jaegerUnits(best.wait.duration);
	assert.strictEqual(m[2], want.unit, `duration unit on the page ${m[0]}, API says ${best.wait.duration}µs`);
	assert.ok(Math.abs(parseFloat(m[1]) - want.value) <= 0.011,
		`duration on the page ${m[0]}, API says ${best.wait.duration}µs`);

	// Open the wait span: its tags name the lock.
	const shot = () => screenshot(page, 'jaeger-trace.png');
	await page.evaluate(() => {
		for (const row of document.querySelectorAll('.span-row')) {
			if (row.innerText.includes('lockscope.wait cache.mu')) {
				(row.querySelector('.span-name') || row).click();
				return;
			}
		}
	});
	await page.waitForFunction(() => document.body.innerText.includes('lockscope.lock.name'), { timeout: 10000 });
	await shot(); // the trace, with the wait span open
	// Expand its tags into their table.
	const [tags] = await page.$$('xpath/.//*[contains(@class, "AccordianKeyValues--header")][.//strong[starts-with(text(), "Tags")]]');
	assert.ok(tags, 'the span detail has no Tags header');
	await tags.click();
	await page.waitForSelector('.KeyValueTable', { timeout: 10000 });
	const kv = await page.$$eval('.KeyValueTable tr', (rows) => rows.map((r) => r.innerText.replace(/\s+/g, ' ').trim()));
	assert.ok(kv.some((r) => /^lockscope\.lock\.name\s+cache\.mu$/.test(r)), `tags table has no lockscope.lock.name cache.mu row: ${JSON.stringify(kv)}`);
	assert.ok(kv.some((r) => r.startsWith('lockscope.holder.goroutine.id')), 'the tags name the holder goroutine');
	assert.ok(kv.some((r) => r.startsWith('lockscope.wait.duration_ns ' + Math.floor(best.wait.duration / 1000))),
		`the tags give the wait in ns, consistent with the span: ${JSON.stringify(kv.filter((r) => r.includes('duration')))}`);
	// No stack among the tags to push the holder out of view: it is the
	// span's lockscope.stack log.
	assert.ok(!kv.some((r) => r.startsWith('code.stacktrace')), 'the stack is among the tags, above the holder');
	assert.ok(best.wait.logs.some((l) => l.fields.some((f) => f.key === 'event' && f.value === 'lockscope.stack') &&
		l.fields.some((f) => f.key === 'code.stacktrace' && f.value.includes('main.go'))), "the wait span's lockscope.stack log has its stack");

	// The cause, one click away: the wait's reference to the request that
	// held the lock, which opens that request's trace.
	const [refs] = await page.$$('xpath/.//*[contains(@class, "AccordianReferences--header")]');
	assert.ok(refs, 'the wait span has no References section');
	await refs.click();
	await page.waitForSelector('.ReferencesList--Item', { timeout: 10000 });
	const link = await page.evaluateHandle((spanID) => {
		for (const li of document.querySelectorAll('.ReferencesList--Item')) {
			if (li.innerText.includes(spanID)) return li.querySelector('a');
		}
		return null;
	}, best.holder.spanID);
	assert.ok(await link.evaluate((a) => a !== null), `no reference to the holder's span ${best.holder.spanID}`);
	const href = await link.evaluate((a) => a.getAttribute('href'));
	assert.ok(href && href.includes('/trace/' + best.holder.traceID), `the reference leads to ${href}, want the holder's trace ${best.holder.traceID}`);
	const opened = browser.waitForTarget((tg) => tg.url().includes(best.holder.traceID), { timeout: 15000 });
	await link.click();
	const holderPage = await (await opened).page();
	await holderPage.setViewport({ width: 1400, height: 1000 });
	await holderPage.waitForFunction(() => document.body.innerText.includes('GET /'), { timeout: 30000 });
	const holderText = await bodyText(holderPage);
	const res = await fetch(jaeger + '/api/traces/' + best.holder.traceID);
	const holderSpan = (await res.json()).data[0].spans.find((s) => s.spanID === best.holder.spanID);
	assert.ok(holderSpan, "the holder's span is in its trace");
	assert.ok(holderText.includes(holderSpan.operationName), `the holder's trace shows its request ${holderSpan.operationName}`);
});
