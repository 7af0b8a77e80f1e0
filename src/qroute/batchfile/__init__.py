"""Batch files: JSONL input lines in three formats → jobs; results → JSONL output lines.

Input (`lines`, `reader`): qroute Job lines, OpenAI Batch API request lines and
Anthropic Message Batches request lines, recognised per line, with a per-line
error report. Output (`output`, `writer`): qroute Result lines or the OpenAI
Batch output format, in input or arrival order. Nothing here touches Kafka.
"""

from qroute.batchfile.lines import (
    INPUT_FORMATS,
    InputFormat,
    JobOverrides,
    LineError,
    LineOptions,
    ParsedLine,
    detect_format,
    parse_line,
)
from qroute.batchfile.output import OUTPUT_FORMATS, RENDERERS, OutputFormat, openai_batch_record
from qroute.batchfile.reader import FileChanged, ScanReport, iter_jobs, scan_file
from qroute.batchfile.writer import ResultOrder, ResultsWriter

__all__ = [
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
    "RENDERERS",
    "FileChanged",
    "InputFormat",
    "JobOverrides",
    "LineError",
    "LineOptions",
    "OutputFormat",
    "ParsedLine",
    "ResultOrder",
    "ResultsWriter",
    "ScanReport",
    "detect_format",
    "iter_jobs",
    "openai_batch_record",
    "parse_line",
    "scan_file",
]
