/**
 * Node flags the server process runs with (package.json's `start` script, and the tools that
 * start the server as its own process). test/units.test.ts checks the script carries them.
 *
 * --max-semi-space-size=4 (MB): the server process faces untrusted clients (signalling, uploads)
 * and does no media work itself. V8's young generation otherwise grows to 16 MB semi-spaces under
 * a burst of requests: under the signalling fuzzer the process peaked at 1.50-1.57x its idle RSS,
 * with 4 MB at 1.34-1.37x and the same fuzz time and live frame rate (docs/reliability.md).
 */
export const SERVER_NODE_FLAGS = ['--max-semi-space-size=4'] as const;
