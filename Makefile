# deploybench: `make all` = install (packages + the quickstart's data) + finetune + export + bench + report
# on configs/quickstart.yaml.
PYTHON ?= python3
CONFIG ?= configs/quickstart.yaml
EXTRAS ?= openvino,ray,weights,dev
PYTEST_ARGS ?=

.PHONY: install finetune export bench report all test doctor clean

install:
	$(PYTHON) -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	PYTHON=$(PYTHON) sh scripts/get-data.sh

finetune:
	$(PYTHON) -m deploybench finetune -c $(CONFIG)

export:
	$(PYTHON) -m deploybench export -c $(CONFIG)

bench:
	$(PYTHON) -m deploybench bench -c $(CONFIG)

report:
	$(PYTHON) -m deploybench report -c $(CONFIG)

all: install finetune export bench report

test:
	$(PYTHON) -m pytest -q $(PYTEST_ARGS)

doctor:
	$(PYTHON) -m deploybench doctor

clean:
	rm -rf checkpoints/*/ engines/*/ reports/results.* reports/report.* reports/plots reports/device_peak.json
