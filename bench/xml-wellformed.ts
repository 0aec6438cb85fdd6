/** Test helper shared by the SVG tests (chart.test.ts, growth.test.ts). */
const ENTITY = /^&(amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);/;

/**
 * A strict XML 1.0 well-formedness check for what the chart emits (elements, attributes, text,
 * one declaration): every problem found, empty when well-formed. Kept here, not in a dependency:
 * the project has no XML parser and the chart must not need one.
 */
export function wellFormedProblems(xml: string): string[] {
  const problems: string[] = [];
  const stack: string[] = [];
  let roots = 0;
  let i = 0;
  const checkText = (text: string, where: string): void => {
    for (let k = text.indexOf('&'); k >= 0; k = text.indexOf('&', k + 1))
      if (!ENTITY.test(text.slice(k))) problems.push(`${where}: bare '&' at ${k}`);
    if (text.includes('<')) problems.push(`${where}: bare '<'`);
  };
  if (xml.startsWith('<?xml')) {
    const end = xml.indexOf('?>');
    if (end < 0) return ['unterminated XML declaration'];
    i = end + 2;
  }
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const text = xml.slice(i, lt < 0 ? xml.length : lt);
    if (stack.length === 0 && text.trim() !== '') problems.push(`text outside the root: ${text.trim()}`);
    checkText(text, 'text');
    if (lt < 0) break;
    const gt = xml.indexOf('>', lt);
    if (gt < 0) return [...problems, `unterminated tag at ${lt}`];
    const tag = xml.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      const open = stack.pop();
      if (open !== name) problems.push(`</${name}> closes <${open ?? 'nothing'}>`);
      continue;
    }
    const selfClosing = tag.endsWith('/');
    const body = selfClosing ? tag.slice(0, -1) : tag;
    const m = /^([A-Za-z_][-\w.:]*)/.exec(body);
    if (!m) {
      problems.push(`bad element name in <${tag}>`);
      continue;
    }
    const name = m[1] as string;
    let rest = body.slice(name.length);
    const seen = new Set<string>();
    while (rest.trim() !== '') {
      const a = /^\s+([A-Za-z_:][-\w.:]*)="([^"]*)"/.exec(rest);
      if (!a) {
        problems.push(`<${name}>: bad attribute syntax near ${rest.slice(0, 30)}`);
        break;
      }
      if (seen.has(a[1] as string)) problems.push(`<${name}>: duplicate attribute ${a[1]}`);
      seen.add(a[1] as string);
      checkText(a[2] as string, `<${name} ${a[1]}>`);
      rest = rest.slice(a[0].length);
    }
    if (stack.length === 0) roots++;
    if (!selfClosing) stack.push(name);
  }
  if (stack.length > 0) problems.push(`unclosed: ${stack.join(' > ')}`);
  if (roots !== 1) problems.push(`${roots} root elements`);
  return problems;
}
