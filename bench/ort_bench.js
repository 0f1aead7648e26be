#!/usr/bin/env node
// ONNX Runtime row of bench/peers.sh: times session.run of the exported
// network through the npm package onnxruntime-node (its bundled CPU
// execution provider), and prints one JSON line with the keys of
// `mms bench --json`.
//
//   node ort_bench.js MODULE_DIR ONNX_DIR THREADS ITERS WARMUP
//
// MODULE_DIR is the node_modules holding onnxruntime-node (bench/.cache,
// outside any package.json, so it is required by path). ONNX_DIR is
// export_onnx.py's output: net.onnx, and a check input with PyTorch's
// logits for it.
//
// Session options are the fastest ONNX Runtime offers on the CPU for one
// stream: every graph optimisation (constant folding, conv+bn+activation
// fusion, NCHWc layout), intra-op threads = THREADS (the caller's thread
// counts as one of them, as in mmsd), one inter-op thread and sequential
// execution, since the network is a chain with nothing to run in parallel.
//
// Each timed run is one `await session.run()`: it includes the promise's
// resolution (a few microseconds), which is the API a node program uses.
'use strict';

const fs = require('fs');
const path = require('path');

function summarise(ms) {
  // Median, and p90 by nearest rank (ceil(0.9 n)), as cli/cmd_bench.c.
  ms.sort((a, b) => a - b);
  const n = ms.length;
  const median = n % 2 ? ms[(n - 1) / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
  return { median, p90: ms[Math.ceil(0.9 * n) - 1], min: ms[0] };
}

function readF32(file) {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

async function main() {
  const [modDir, onnxDir, threadsArg, itersArg, warmupArg] = process.argv.slice(2);
  const threads = parseInt(threadsArg, 10);
  const iters = parseInt(itersArg, 10);
  const warmup = parseInt(warmupArg, 10);
  const row = { engine: 'onnxruntime-node', precision: 'fp32', threads, iters };
  try {
    const modPath = path.resolve(modDir, 'onnxruntime-node');
    const ort = require(modPath);
    const version = JSON.parse(fs.readFileSync(path.join(modPath, 'package.json'))).version;
    row.engine = `onnxruntime-node ${version} cpu, graph opt all`;
    const session = await ort.InferenceSession.create(path.join(onnxDir, 'net.onnx'), {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
    });
    // The size comes from the export's description, not from the session's
    // metadata (whose API changed across onnxruntime-node versions).
    const [h, w] = JSON.parse(fs.readFileSync(path.join(onnxDir, 'export.json'))).size
      .split('x').map(Number);
    const x = readF32(path.join(onnxDir, 'check_input.f32'));
    const ref = readF32(path.join(onnxDir, 'check_logits.f32'));
    const hw = h * w;
    if (ref.length !== hw || x.length !== 3 * hw) throw new Error('check files do not match the size');
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', x, [1, 3, h, w]) };
    const outName = session.outputNames[0];

    // Same network as PyTorch? Compare the logits for the check input.
    const y = (await session.run(feeds))[outName].data;
    let diff = 0;
    for (let i = 0; i < hw; i++) diff = Math.max(diff, Math.abs(y[i] - ref[i]));
    row.check_max_abs_diff = Number(diff.toPrecision(3));
    row.check_ok = diff <= 1e-3;

    for (let i = 0; i < warmup; i++) await session.run(feeds);
    const ms = [];
    for (let i = 0; i < iters; i++) {
      const t = process.hrtime.bigint();
      await session.run(feeds);
      ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    const s = summarise(ms);
    Object.assign(row, {
      status: 'ok', size: `${h}x${w}`,
      median_ms: +s.median.toFixed(3), p90_ms: +s.p90.toFixed(3), min_ms: +s.min.toFixed(3),
      fps: +(1000 / s.median).toFixed(2),
    });
    if (!row.check_ok) row.note = `logits differ from PyTorch by ${row.check_max_abs_diff} (> 1e-3)`;
    console.log(JSON.stringify(row));
  } catch (e) {
    const msg = String(e && e.message ? e.message : e).split(/\s+/).join(' ').slice(0, 400);
    console.log(JSON.stringify({ ...row, status: 'failed', reason: msg }));
    process.exitCode = 1;
  }
}

main();
