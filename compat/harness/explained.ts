// Why a case fails where it fails, written by people once a failure is
// understood: a corral bug (then fixed, and the entry goes), or a framework
// limit, with its upstream issue. Keyed `<framework id>/<case id>`, or
// `*/<case id>` for a failure every framework shares. spec/compat.md prints
// these under the grid; a failure with no entry here is printed as
// "unexplained", with what the harness saw, and fails the fast subset in
// npm test.
export const EXPLAINED: Readonly<Record<string, string>> = {}
