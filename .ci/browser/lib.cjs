// Shared helpers of the browser tests.
'use strict';
const path = require('node:path');
const puppeteer = require('puppeteer-core');

// launch starts Debian's chromium, headless.
function launch() {
	return puppeteer.launch({
		executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
		headless: true,
		args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
			'--disable-background-networking', '--disable-component-update', '--disable-sync'],
	});
}

// screenshot saves the page as SCREENSHOT_DIR/name when SCREENSHOT_DIR is set.
async function screenshot(page, name, opts = {}) {
	const dir = process.env.SCREENSHOT_DIR;
	if (!dir) return;
	await page.screenshot({ path: path.join(dir, name), ...opts });
}

function bodyText(page) {
	return page.evaluate(() => document.body.innerText);
}

module.exports = { launch, screenshot, bodyText };
