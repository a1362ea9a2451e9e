export function price(n) {
  return "$" + n.toFixed(2);
}
