"""The dashboard's inline CSS and JavaScript (no network at view time, no external files).

One script for the whole page, with delegated listeners: pytest-html inserts each test's extras
with ``innerHTML`` (scripts in them never run), so the plots in those blocks are driven from the
summary's script. It sorts ``table.st-sort`` by a clicked header (numbers by ``data-v``), shows
values under the mouse on ``svg.st-plot``, zooms them with the wheel (double-click resets), and
copies repro commands.
"""

from __future__ import annotations

CSS = """
.st-dash{font-family:sans-serif;font-size:13px;color:#222;margin:8px 0 16px 0}
.st-dash h2{font-size:17px;margin:14px 0 6px 0}.st-dash h3{font-size:14px;margin:10px 0 4px 0}
.st-counts span{display:inline-block;padding:3px 9px;margin:2px 4px 2px 0;border-radius:3px;color:#fff;font-weight:bold}
.st-c-passed{background:#2e7d32}.st-c-failed{background:#c62828}.st-c-infra{background:#6a1b9a}
.st-c-error{background:#ad1457}.st-c-skipped,.st-c-xfailed,.st-c-unknown{background:#777}.st-c-xpassed{background:#e65100}
.st-dash table{border-collapse:collapse;margin:4px 0;font-size:12px}
.st-dash th,.st-dash td{border:1px solid #ccc;padding:2px 7px;text-align:right}
.st-dash th:first-child,.st-dash td:first-child{text-align:left}
table.st-sort th{cursor:pointer;background:#f3f3f3;user-select:none}
table.st-sort th[data-dir=asc]::after{content:" \\25B2"}table.st-sort th[data-dir=desc]::after{content:" \\25BC"}
.st-fail{border-left:4px solid #c62828;padding:4px 10px;margin:8px 0;background:#fff8f8}
.st-fail.st-infra{border-left-color:#6a1b9a;background:#faf6fc}
.st-reason{font-weight:bold;color:#b71c1c;margin:2px 0}.st-infra .st-reason{color:#4a148c}
.st-msg{white-space:pre-wrap;color:#555;margin:2px 0;font-size:11px}
.st-repro code{background:#f1f1f1;padding:2px 5px;font-size:11px;word-break:break-all}
.st-links a{margin-right:10px}.st-hint{color:#666;font-size:11px}
.st-gallery a{display:inline-block;margin:3px;text-align:center;font-size:10px;width:126px;
 vertical-align:top;text-decoration:none;color:#333;word-break:break-all}
.st-gallery svg{border:2px solid #2e7d32;background:#fafafa}.st-gallery a.st-bad svg{border-color:#c62828}
.st-gallery a.st-inf svg{border-color:#6a1b9a}
.st-v-regression,.st-neg{color:#c62828;font-weight:bold}.st-v-improvement{color:#2e7d32;font-weight:bold}
.st-near{color:#e65100;font-weight:bold}
svg.st-plot{margin:2px;border:1px solid #eee;background:#fff}
"""

JS = r"""
(function(){
if(window.__simtwin)return;window.__simtwin=1;
function key(td){var v=td.getAttribute('data-v');if(v!==null&&v!==''&&!isNaN(+v))return +v;return td.textContent.trim().toLowerCase();}
document.addEventListener('click',function(e){
  var th=e.target.closest&&e.target.closest('table.st-sort th');
  if(th){var tb=th.closest('table'),i=Array.prototype.indexOf.call(th.parentNode.children,th),
    dir=th.getAttribute('data-dir')==='asc'?'desc':'asc',body=tb.tBodies[0],rows=Array.prototype.slice.call(body.rows);
    Array.prototype.forEach.call(th.parentNode.children,function(h){h.removeAttribute('data-dir');});
    th.setAttribute('data-dir',dir);
    rows.sort(function(a,b){var x=key(a.cells[i]),y=key(b.cells[i]);
      if(typeof x!==typeof y){x=String(x);y=String(y);}return (x<y?-1:x>y?1:0)*(dir==='asc'?1:-1);});
    rows.forEach(function(r){body.appendChild(r);});return;}
  var a=e.target.closest&&e.target.closest('a[href^="#t-"]');
  if(a){var el=document.getElementById(a.getAttribute('href').slice(1)),row=el&&el.closest('.extras-row');
    if(row&&row.classList.contains('hidden')){row.classList.remove('hidden');  // a collapsed pytest-html row
      var tb=row.closest('tbody'),c=tb&&tb.querySelector('.col-result');if(c)c.classList.remove('collapsed');}
    if(el){e.preventDefault();el.scrollIntoView();history.replaceState(null,'',a.getAttribute('href'));}return;}
  var b=e.target.closest&&e.target.closest('.st-copy');
  if(b){var c=b.parentNode.querySelector('code');if(!c)return;var t=c.textContent;
    if(navigator.clipboard){navigator.clipboard.writeText(t).then(function(){b.textContent='copied';});}
    else{var r=document.createRange();r.selectNodeContents(c);var s=getSelection();s.removeAllRanges();s.addRange(r);}}
});
function data(svg){if(!svg.__d){try{svg.__d=JSON.parse(svg.getAttribute('data-st'));}catch(x){svg.__d={};}}return svg.__d;}
function at(ts,vs,t){var v=null;for(var i=0;i<ts.length;i++){if(ts[i]<=t)v=vs[i];else break;}return v;}
function f(v,d){return v===null||v===undefined?'-':(+v).toFixed(d);}
function local(svg,e){var g=svg.querySelector('.st-data'),p=svg.createSVGPoint();p.x=e.clientX;p.y=e.clientY;
  return p.matrixTransform(g.getScreenCTM().inverse());}
document.addEventListener('mousemove',function(e){
  var svg=e.target.closest&&e.target.closest('svg.st-plot');if(!svg)return;
  var d=data(svg),p=local(svg,e),cur=svg.querySelector('.st-cursor'),txt=svg.querySelector('.st-hover'),i,best=-1,bd=Infinity;
  if(!d.t||!d.t.length)return;
  if(d.kind==='traj'){for(i=0;i<d.x.length;i++){var dx=d.x[i]-p.x,dy=d.y[i]-p.y,q=dx*dx+dy*dy;if(q<bd){bd=q;best=i;}}
    var t=d.t[best];cur.setAttribute('cx',d.x[best]);cur.setAttribute('cy',d.y[best]);cur.setAttribute('visibility','visible');
    txt.textContent='t '+f(t,2)+' s  x '+f(d.x[best],3)+' y '+f(d.y[best],3)+' m  yaw '+f(d.yaw[best],2)+
      ' rad  cmd '+f(at(d.ct,d.cv,t),2)+' m/s '+f(at(d.ct,d.cw,t),2)+' rad/s';}
  else{for(i=0;i<d.t.length;i++){var q2=Math.abs(d.t[i]-p.x);if(q2<bd){bd=q2;best=i;}}
    var tt=d.t[best];cur.setAttribute('x1',tt);cur.setAttribute('x2',tt);cur.setAttribute('y1',-1e6);cur.setAttribute('y2',1e6);
    cur.setAttribute('visibility','visible');
    txt.textContent='t '+f(tt,2)+' s  measured '+f(d.v[best],3)+'  commanded '+f(at(d.ct,d.c,tt),3)+' '+d.unit;}
});
document.addEventListener('wheel',function(e){
  var svg=e.target.closest&&e.target.closest('svg.st-plot');if(!svg)return;e.preventDefault();
  var a=svg.querySelector('.st-area'),vb=a.viewBox.baseVal,p=local(svg,e),k=e.deltaY<0?0.8:1.25,d=data(svg);
  var nx=p.x-(p.x-vb.x)*k,nw=vb.width*k;
  if(d.kind==='traj'){var py=-p.y;a.setAttribute('viewBox',[nx,py-(py-vb.y)*k,nw,vb.height*k].join(' '));}
  else{a.setAttribute('viewBox',[nx,vb.y,nw,vb.height].join(' '));}
},{passive:false});
document.addEventListener('dblclick',function(e){
  var svg=e.target.closest&&e.target.closest('svg.st-plot');if(!svg)return;
  svg.querySelector('.st-area').setAttribute('viewBox',svg.getAttribute('data-vb'));
});
})();
"""


def style_and_script() -> str:
    """The ``<style>`` and ``<script>`` elements every dashboard page carries once."""
    return f"<style>{CSS}</style><script>{JS}</script>"
