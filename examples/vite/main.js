// The whole integration: importing the package registers <skywatch-trainer>. Vite follows the
// package's `new URL('./file', import.meta.url)` references and copies the worker, the wasm and
// the quick data into dist/.
import 'skywatch-widget';
