import { Argument, Command } from 'commander';

/** Shells `meshnet completion` writes a script for. */
export const COMPLETION_SHELLS = ['bash', 'zsh'] as const;
/** One of COMPLETION_SHELLS. */
export type CompletionShell = (typeof COMPLETION_SHELLS)[number];

/** An option as completion sees it. */
export interface CompletionOption {
  /** Its spellings: `-p`, `--publish`. */
  names: string[];
  description: string;
  takesValue: boolean;
  choices: string[];
}

/** One command of the tree, by its path of names from the root ('' is `meshnet` itself). */
export interface CompletionNode {
  path: string;
  subcommands: { name: string; description: string }[];
  options: CompletionOption[];
  /** Values the command's positional arguments accept, when they are a fixed set. */
  argChoices: string[];
}

/**
 * The command tree as completion data, read from commander itself (what `--help` shows: hidden
 * commands and options stay hidden), so a new command or option completes without touching this.
 */
export function completionTree(root: Command): CompletionNode[] {
  const out: CompletionNode[] = [];
  const walk = (cmd: Command, path: string) => {
    const help = cmd.createHelp();
    const subs = help.visibleCommands(cmd);
    out.push({
      path,
      subcommands: subs.map((c) => ({ name: c.name(), description: c.description() })),
      options: help.visibleOptions(cmd).map((o) => ({
        names: [o.short, o.long].filter((n): n is string => typeof n === 'string'),
        description: o.description,
        takesValue: o.required || o.optional,
        choices: o.argChoices ?? [],
      })),
      argChoices: cmd.registeredArguments.flatMap((a: Argument) => a.argChoices ?? []),
    });
    // The implicit `help [command]` takes command names, not a subtree of its own.
    for (const c of subs) if (c.name() !== 'help' || c.commands.length > 0) walk(c, path ? `${path} ${c.name()}` : c.name());
  };
  walk(root, '');
  // Program options are accepted after a subcommand too (commander's default): offer them everywhere.
  const globals = out[0]!.options;
  for (const n of out.slice(1)) {
    const own = new Set(n.options.flatMap((o) => o.names));
    n.options.push(...globals.filter((o) => !o.names.some((name) => own.has(name))));
  }
  return out;
}

/** A single-quoted shell word (both shells read it the same way). */
function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A shell function that switches on its first argument. */
function caseFunction(name: string, arms: string[], otherwise: string): string {
  if (arms.length === 0) return `${name}() { ${otherwise}; }`;
  return `${name}() {\n  case "$1" in\n${arms.map((a) => `    ${a}`).join('\n')}\n  esac\n  ${otherwise}\n}`;
}

/** The shell functions both scripts share: which paths exist, what each offers, which options take values. */
function sharedFunctions(nodes: CompletionNode[]): string {
  const known = nodes.filter((n) => n.path !== '').map((n) => q(n.path));
  const valued = nodes.flatMap((n) => n.options.filter((o) => o.takesValue).flatMap((o) => o.names.map((name) => q(`${n.path}|${name}`))));
  return [
    '# Command paths meshnet knows.',
    caseFunction('_meshnet_known', known.length ? [`${known.join('|')}) return 0 ;;`] : [], 'return 1'),
    '# Subcommands and fixed argument values of a command path.',
    caseFunction('_meshnet_words', nodes.map((n) => `${q(n.path)}) echo ${q([...n.subcommands.map((s) => s.name), ...n.argChoices].join(' '))} ;;`), ':'),
    '# Options of a command path.',
    caseFunction('_meshnet_opts', nodes.map((n) => `${q(n.path)}) echo ${q(n.options.flatMap((o) => o.names).join(' '))} ;;`), ':'),
    '# "PATH|OPTION": does the option take a value?',
    caseFunction('_meshnet_valued', valued.length ? [`${valued.join('|')}) return 0 ;;`] : [], 'return 1'),
    '# "PATH|OPTION": the values an option accepts, when they are a fixed set.',
    caseFunction('_meshnet_choices', nodes.flatMap((n) => n.options.filter((o) => o.choices.length > 0).flatMap((o) => o.names.map((name) => `${q(`${n.path}|${name}`)}) echo ${q(o.choices.join(' '))} ;;`))), ':'),
    // Walks the words before the cursor: sets cmdpath (the command being completed) and skip=1 when
    // the last of them is an option waiting for its value; after `--` the rest is a task's command line.
    `_meshnet_walk() {
  local w next i
  cmdpath='' skip=0 dashdash=0
  for w in "$@"; do
    if ((skip)); then skip=0; continue; fi
    if [[ "$w" == -- ]]; then dashdash=1; return; fi
    case "$w" in
      --*=*) continue ;;
      -*) if _meshnet_valued "$cmdpath|$w"; then skip=1; fi; continue ;;
    esac
    next="\${cmdpath:+$cmdpath }$w"
    if _meshnet_known "$next"; then cmdpath="$next"; fi
  done
}`,
  ].join('\n');
}

/** The bash script: `source <(meshnet completion bash)`, or save it as /etc/bash_completion.d/meshnet. */
export function bashCompletion(root: Command): string {
  return `# meshnet completion for bash, generated by \`meshnet completion bash\` from meshnet's command tree.
# Load it with: source <(meshnet completion bash)   (or save it as /etc/bash_completion.d/meshnet)
${sharedFunctions(completionTree(root))}
_meshnet() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" cmdpath skip dashdash
  _meshnet_walk "\${COMP_WORDS[@]:1:COMP_CWORD-1}"
  COMPREPLY=()
  if ((dashdash)); then compopt -o default 2>/dev/null; return; fi
  if ((skip)); then
    local values
    values="$(_meshnet_choices "$cmdpath|$prev")"
    if [[ -n "$values" ]]; then COMPREPLY=($(compgen -W "$values" -- "$cur")); else compopt -o default 2>/dev/null; fi
    return
  fi
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(_meshnet_opts "$cmdpath")" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(_meshnet_words "$cmdpath")" -- "$cur"))
  fi
}
complete -F _meshnet meshnet
`;
}

/** The zsh script: save it as _meshnet in a directory on $fpath, or `source <(meshnet completion zsh)` after compinit. */
export function zshCompletion(root: Command): string {
  const nodes = completionTree(root);
  const described = (fn: string, lines: (n: CompletionNode) => string[]) =>
    `${fn}() {\n  case "$1" in\n${nodes.map((n) => `    ${q(n.path)}) print -rl -- ${lines(n).map(q).join(' ')} ;;`).join('\n')}\n  esac\n}`;
  // _describe splits "name:description" at the first unescaped colon; names never hold one.
  const oneLine = (s: string) => s.replace(/\s+/g, ' ');
  return `#compdef meshnet
# meshnet completion for zsh, generated by \`meshnet completion zsh\` from meshnet's command tree.
# Save it as _meshnet in a directory on $fpath, or run: source <(meshnet completion zsh)   (after compinit)
${sharedFunctions(nodes)}
${described('_meshnet_cmd_desc', (n) => [...n.subcommands.map((s) => `${s.name}:${oneLine(s.description)}`), ...n.argChoices])}
${described('_meshnet_opt_desc', (n) => n.options.flatMap((o) => o.names.map((name) => `${name}:${oneLine(o.description)}`)))}
_meshnet() {
  local cur="\${words[CURRENT]}" prev="\${words[CURRENT-1]}" cmdpath skip dashdash
  local -a items
  _meshnet_walk "\${(@)words[2,CURRENT-1]}"
  if ((dashdash)); then _files; return; fi
  if ((skip)); then
    items=(\${=$(_meshnet_choices "$cmdpath|$prev")})
    if ((\${#items})); then compadd -a items; else _files; fi
    return
  fi
  if [[ "$cur" == -* ]]; then
    items=("\${(@f)$(_meshnet_opt_desc "$cmdpath")}")
    _describe -t options 'meshnet option' items
  else
    items=("\${(@f)$(_meshnet_cmd_desc "$cmdpath")}")
    items=(\${items:#})
    _describe -t commands 'meshnet command' items
  fi
}
if [[ "\${zsh_eval_context[-1]}" == loadautofunc ]]; then _meshnet "$@"; else compdef _meshnet meshnet; fi
`;
}

/** `meshnet completion bash|zsh`: prints the script for the shell. */
export function completionCommand(): Command {
  return new Command('completion')
    .description('print a shell completion script for meshnet\'s commands and options')
    .addArgument(new Argument('<shell>', 'bash or zsh').choices([...COMPLETION_SHELLS]))
    .addHelpText('after', '\nLoad it now:      source <(meshnet completion bash)\nInstall (bash):   meshnet completion bash > /etc/bash_completion.d/meshnet\nInstall (zsh):    meshnet completion zsh > "${fpath[1]}/_meshnet"')
    .action((shell: CompletionShell, _opts: unknown, cmd: Command) => {
      let root = cmd;
      while (root.parent) root = root.parent;
      process.stdout.write(shell === 'bash' ? bashCompletion(root) : zshCompletion(root));
    });
}
