/**
 * Storage class files for `galleon storage-class create`: the format and its checks live in one
 * place, `parseStorageClassDocument` (metadata/state), which the state machine's own validation
 * backs; this only names it for the CLI.
 */
export { parseStorageClassDocument as parseStorageClassText } from '../../metadata/state/logic/storage-class-document.js';
