// Downloads mediasoup's official prebuilt mediasoup-worker tarball.
//
// Usage: node fetch-prebuilt.mjs <mediasoup package dir> <output .tgz path>
// Exit codes: 0 downloaded, 2 no prebuilt published for this host, 1 any
// other failure (offline, timeout, HTTP error).
//
// mediasoup's own `postinstall` does the same download, but when it fails it
// falls back to its online source build (pip install, meson wrap downloads),
// which is slow and leaves files behind in node_modules. This does only the
// download, with a hard timeout, so build-mediasoup-worker.sh can fall back
// to its offline build quickly. The URL scheme mirrors
// downloadPrebuiltWorker()/getWorkerPrebuildTarName() in mediasoup 3.27's
// npm-scripts.mjs, including its MEDIASOUP_WORKER_PREBUILT_DOWNLOAD_BASE_URL
// override.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const [mediasoupDir, outPath] = process.argv.slice(2);

if (!mediasoupDir || !outPath) {
	console.error('usage: node fetch-prebuilt.mjs <mediasoup dir> <out.tgz>');
	process.exit(1);
}

const pkg = JSON.parse(fs.readFileSync(path.join(mediasoupDir, 'package.json'), 'utf8'));
const timeoutMs = 1000 * Number(process.env.REENACT_PREBUILT_TIMEOUT_S || 60);

const repoUrl = pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '');
const releaseBase =
	process.env.MEDIASOUP_WORKER_PREBUILT_DOWNLOAD_BASE_URL || `${repoUrl}/releases/download`;

let tarName = `mediasoup-worker-${pkg.version}-${os.platform()}-${os.arch()}`;

// Linux prebuilts are published per kernel major version.
if (os.platform() === 'linux') {
	tarName += `-kernel${Number(os.release().split('.')[0])}`;
}

const url = `${releaseBase}/${pkg.version}/${tarName}.tgz`;

console.log(`fetching ${url} (timeout ${timeoutMs / 1000}s)`);

try {
	// The timeout covers the body as well, so a stalled transfer cannot hang
	// the build script.
	const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });

	if (res.status === 404) {
		console.log('no prebuilt mediasoup-worker is published for this host');
		process.exit(2);
	}

	if (!res.ok) {
		console.log(`download failed: HTTP ${res.status} ${res.statusText}`);
		process.exit(1);
	}

	fs.writeFileSync(outPath, Buffer.from(await res.arrayBuffer()));
} catch (error) {
	const cause = error.cause?.code ?? error.cause?.message ?? error.name;

	console.log(`download failed: ${error.message}${cause ? ` (${cause})` : ''}`);
	process.exit(1);
}
