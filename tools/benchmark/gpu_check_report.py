"""The markdown of a gpu_check.py report: a summary of every section that
ran (with the tracebacks of those that failed), then each section's table."""
from typing import Dict, List

LABELS = dict(runner='Runner, CPU decoding (the config, fp16)',
              runner_bf16='Runner, --bf16',
              runner_gpu_decode='Runner, GPU decoding',
              plain_loop='plain loop, the config\'s pipeline',
              authors_loop='plain loop, the authors\' torchvision pipeline',
              dataloader_only='dataloader alone (config)',
              step_only='training step alone (model only)')
ORDER = ('runner', 'runner_bf16', 'runner_gpu_decode', 'plain_loop',
         'authors_loop', 'dataloader_only', 'step_only')


def _summary(report: Dict) -> List[str]:
    lines = ['| section | status | s | result |', '|---|---|---|---|']
    for rec in report['sections']:
        note = (rec.get('note') or '').replace('|', '/')
        lines.append(f'| {rec["title"]} | {rec["status"]} | '
                     f'{rec["seconds"]:.0f} | {note} |')
    failed = [r for r in report['sections'] if r.get('traceback')]
    for rec in failed:
        lines += ['', f'Section `{rec["title"]}` failed:', '', '```',
                  rec['traceback'].rstrip(), '```']
    return lines


def _loss(report: Dict) -> List[str]:
    if not report.get('loss_ms'):
        return []
    shapes = report['shapes']
    lines = ['', '| loss, fwd+bwd ms | dtype | ' + ' | '.join(shapes) + ' |',
             '|---|---|' + '---|' * len(shapes)]
    for dtype, table in report['loss_ms'].items():
        for name, row in table.items():
            lines.append(f'| {name} | {dtype} | ' +
                         ' | '.join(f'{row[s]:.3f}' for s in shapes) + ' |')
    return lines


def _resnet(report: Dict) -> List[str]:
    step = report.get('resnet50_step')
    if not step:
        return []
    lines = ['', f'ResNet-50 step, batch {report["step_batch"]}, bf16:', '',
             '| loss | ms / step | vs BCE | peak MiB |', '|---|---|---|---|']
    for name, row in step.items():
        peak = row.get('peak_mib')
        lines.append(f'| {name} | {row["ms"]:.2f} | '
                     f'{row["overhead_pct"]:+.2f}% | '
                     f'{"n/a" if peak is None else f"{peak:.0f}"} |')
    return lines


def _sync(report: Dict) -> List[str]:
    sync = report.get('sync_debug')
    if not sync:
        return []
    lines = ['', 'Host syncs in training steps, counted by '
             '`torch.cuda.set_sync_debug_mode("warn")` (the Runner with the '
             'check hooks; log-line steps read the losses):', '',
             '| precision | optim wrapper | steps | warnings between log '
             'lines (goal 0) | warnings in all |', '|---|---|---|---|---|']
    for precision, row in sync.items():
        between, total = row['between_log_lines'], row['warnings']
        lines.append(f'| {precision} | {row["optim_wrapper"]} | '
                     f'{row["steps"]} | '
                     f'{"n/a (no CUDA)" if between is None else between} | '
                     f'{"n/a" if total is None else total} |')
    examples = sorted({e for row in sync.values() for e in row['examples']})
    if examples:
        lines += ['', 'Where:', ''] + [f'- `{e}`' for e in examples]
    return lines


def _throughput(report: Dict) -> List[str]:
    thr = report.get('throughput') or {}
    rows = [name for name in ORDER if name in thr]
    if not rows:
        return []
    ref = thr.get('plain_loop', {}).get('images_per_s')
    step = thr.get('step_only', {}).get('images_per_s')

    def ratio(value, base):
        return 'n/a' if not base else f'{100 * value / base:.1f}%'

    lines = ['', 'Training throughput, configs/twoway_coco_r50.py, batch '
             f'{report["batch"]}, {report["workers"]} workers, '
             f'{report.get("iterations", "?")} iterations '
             f'({report["warmup"]} warm-up not timed):', '',
             '| run | images/s | vs plain loop | vs step only | peak MiB |',
             '|---|---|---|---|---|']
    for name in rows:
        row = thr[name]
        peak = row.get('peak_mib')
        lines.append(f'| {LABELS.get(name, name)} | '
                     f'{row["images_per_s"]:.1f} | '
                     f'{ratio(row["images_per_s"], ref)} | '
                     f'{ratio(row["images_per_s"], step)} | '
                     f'{"n/a" if peak is None else f"{peak:.0f}"} |')
    if thr.get('runner', {}).get('val_metrics'):
        lines += ['', 'Runner validation (synthetic COCO val2014; random '
                  'labels, so the values only show that it ran): ' +
                  ', '.join(f'{k} {v:.2f}' for k, v in
                            thr['runner']['val_metrics'].items())]
    return lines


def to_markdown(report: Dict) -> str:
    """The report as markdown for docs/benchmark.md."""
    sizes = ('SMOKE RUN (tiny sizes, figures meaningless)'
             if report['smoke'] else 'full sizes')
    lines = [f'Device: {report["device"]}; torch {report["torch"]}; '
             f'{sizes}.', '']
    lines += _summary(report) + _loss(report) + _resnet(report)
    lines += _sync(report) + _throughput(report)
    if report.get('voc_val'):
        lines += ['', 'VOC 2007 validation with difficult objects: ' +
                  ', '.join(f'{k} {v:.2f}' for k, v in
                            report['voc_val'].items())]
    dist = report.get('dist_train')
    if dist:
        lines += ['', f'`tools/dist_train.sh CONFIG 1` ({dist["backend"]}): '
                  f'exit {dist["returncode"]} in {dist["seconds"]:.0f} s.']
    for text in (report.get('markdown') or {}).values():
        lines += ['', text.rstrip()]
    return '\n'.join(lines) + '\n'
