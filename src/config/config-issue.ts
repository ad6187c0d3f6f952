// One problem found in the configuration: where it is and what to do about it. load.ts gathers
// them from every check and reports them all at once.

export interface ConfigIssue {
  /** Dotted path into the YAML document, e.g. `providers.openai.baseUrl`; `line 4, column 7` for YAML syntax; `env NAME` for a variable. */
  path: string;
  message: string;
}
