export { Outcome, type Operation } from './history.js';
export { registerModel, type Model, type RegisterInput, type RegisterOutput, type RegisterState, type StepResult } from './model.js';
export { searchKey, type SearchResult, type StuckPoint, type Verdict } from './search.js';
export { checkHistory, defaultCheckOptions, formatViolation, type CheckOptions, type CheckResult, type KeyResult, type Witness } from './check.js';
