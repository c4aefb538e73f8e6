// Node 20 lacks Promise.withResolvers, which matrix-js-sdk uses. Importing
// this module (for its effect) before the SDK is loaded defines it; the
// programs and tests that run the SDK in Node import it first.
if (!Promise.withResolvers) {
  Promise.withResolvers = function () {
    let resolve, reject;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
