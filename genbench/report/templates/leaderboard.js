function sortTable(th, descending) {
  const table = th.closest("table"), index = Array.from(th.parentNode.children).indexOf(th);
  const key = (row) => { const v = row.children[index].dataset.sort; return v === undefined ? null : v; };
  const rows = Array.from(table.tBodies[0].rows);
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === null || y === null) return (x === null) - (y === null);
    const nx = Number(x), ny = Number(y);
    const order = isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny;
    return descending ? -order : order;
  });
  rows.forEach((row) => table.tBodies[0].appendChild(row));
  table.querySelectorAll("th").forEach((other) => delete other.dataset.order);
  th.dataset.order = descending ? "desc" : "asc";
}
document.querySelectorAll("table.sortable th").forEach((th) => {
  th.addEventListener("click", (event) => {
    if (!event.target.closest("a")) sortTable(th, th.dataset.order === "asc");  // the § link goes to the protocol
  });
});
const wanted = decodeURIComponent(location.hash).match(/^#sort=(-?)(.+)$/);
if (wanted) {
  document.querySelectorAll("table.sortable th").forEach((th) => {
    if (th.textContent.split(" ")[0] === wanted[2]) sortTable(th, wanted[1] === "-");
  });
}
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const decoded = images.filter((img) => img.complete && img.naturalWidth > 0).length;
  document.body.dataset.images = decoded + "/" + images.length;
});
