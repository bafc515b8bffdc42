// Preloaded with `node --require` to run meterline as if the optional `chdb` package were not
// installed: resolving it fails exactly as Node fails for a missing package.
'use strict';
const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === 'chdb' || request.startsWith('chdb/')) {
    const err = new Error(`Cannot find module '${request}'`);
    err.code = 'MODULE_NOT_FOUND';
    throw err;
  }
  return resolve.call(this, request, ...rest);
};
