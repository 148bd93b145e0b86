package sandbox

import (
	"fmt"
	"strings"
	"time"
)

// Annotations and labels the sandbox uses to drive its simulated kubelets.
const (
	// KwokNodeAnnotation marks a node as simulated by this sandbox's kwok.
	KwokNodeAnnotation = "kwok.x-k8s.io/node"
	// KubeletStoppedAnnotation makes a simulated node's kubelet "stop": the
	// node goes NotReady and stays so until the annotation is removed,
	// as a real node does while its kubelet restarts after an upgrade.
	KubeletStoppedAnnotation = "sandbox.kup.dev/kubelet-stopped"
	// CrashLoopAnnotation on a pod (template) makes its containers crash-loop.
	CrashLoopAnnotation = "sandbox.kup.dev/crash-loop"
	// ReadyDelayAnnotation on a pod overrides the sandbox's pod ready
	// delay for that pod (a Go duration, "2.5s").
	ReadyDelayAnnotation = "sandbox.kup.dev/ready-delay"
	// SandboxLabel is on every object the sandbox seeds.
	SandboxLabel = "sandbox.kup.dev/seeded"
)

// kwokStages returns kwok's Stage configuration for the sandbox. They are
// kwok's own stages (kustomize/stage/node/fast, node/heartbeat-with-lease,
// pod/fast in sigs.k8s.io/kwok v0.8.0) with three changes:
//   - pods become Ready after podReadyDelay (or their ReadyDelayAnnotation), so PodDisruptionBudgets bite as
//     they would with real containers;
//   - a node annotated KubeletStoppedAnnotation goes NotReady and is not
//     re-initialised until the annotation goes, so an "upgrade" can take the
//     kubelet away and bring it back at a new version (nodeInfo is kept from
//     the object, so patching status.nodeInfo.kubeletVersion before removing
//     the annotation is what makes the node come back at that version);
//   - a pod annotated CrashLoopAnnotation reports CrashLoopBackOff.
func kwokStages(podReadyDelay time.Duration, podWorkers int) string {
	// A pod annotated ReadyDelayAnnotation takes that long instead (a
	// rehearsal twin gives each workload the delay measured in the real
	// cluster); kwok falls back to durationMilliseconds without it.
	delay := fmt.Sprintf("  delay:\n    durationMilliseconds: %d\n    durationFrom:\n      jq:\n        expression: '.metadata.annotations[\"%s\"]'\n",
		podReadyDelay.Milliseconds(), ReadyDelayAnnotation)
	docs := []string{
		stageNodeInitialize,
		stageNodeKubeletStopped,
		stageNodeHeartbeat,
		strings.Replace(stagePodReady, "  #DELAY#\n", delay, 1),
		stagePodReadyAgain,
		stagePodCrashLoop,
		stagePodComplete,
		stagePodDelete,
	}
	if podWorkers > 0 {
		docs = append(docs, fmt.Sprintf(kwokConfiguration, podWorkers))
	}
	return strings.Join(docs, "---\n")
}

// kwokConfiguration sets kwok's pod workers (%d). kwok does not default a
// KwokConfiguration read from --config (v0.8.0 exits on "node leases
// parallelism must be greater than 0"), so it spells out kwok's defaults
// for the rest of what it checks.
const kwokConfiguration = `apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  podPlayStageParallelism: %d
  nodePlayStageParallelism: 4
  nodeLeaseParallelism: 4
  podsOnNodeSyncParallelism: 1
  enablePodsOnNodeSyncListPager: true
  enablePodsOnNodeSyncStreamWatch: false
  enableDebuggingHandlers: true
  enableProfilingHandler: true
  enableContentionProfiling: false
`

const stageNodeInitialize = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-initialize
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values:
      - 'True'
    - key: '.metadata.annotations["sandbox.kup.dev/kubelet-stopped"]'
      operator: 'DoesNotExist'
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $now | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type  | Quote}}
      {{ end }}
      addresses:
      {{ with NodeIP }}
      - address: {{ . | Quote }}
        type: InternalIP
      {{ end }}
      {{ with NodeName }}
      - address: {{ . | Quote }}
        type: Hostname
      {{ end }}
      {{ with NodePort }}
      daemonEndpoints:
        kubeletEndpoint:
          Port: {{ . }}
      {{ end }}
      allocatable:
      {{ with .status.allocatable }}
      {{ YAML . 1 }}
      {{ else }}
        cpu: 1k
        memory: 1Ti
        pods: 1M
      {{ end }}
      capacity:
      {{ with .status.capacity }}
      {{ YAML . 1 }}
      {{ else }}
        cpu: 1k
        memory: 1Ti
        pods: 1M
      {{ end }}
      {{ $nodeInfo := .status.nodeInfo }}
      {{ $kwokVersion := printf "kwok-%s" Version }}
      nodeInfo:
        architecture: {{ or $nodeInfo.architecture "amd64" }}
        bootID: {{ or $nodeInfo.bootID ` + "`\"\"`" + ` }}
        containerRuntimeVersion: {{ or $nodeInfo.containerRuntimeVersion $kwokVersion }}
        kernelVersion: {{ or $nodeInfo.kernelVersion $kwokVersion }}
        kubeProxyVersion: {{ or $nodeInfo.kubeProxyVersion $kwokVersion }}
        kubeletVersion: {{ or $nodeInfo.kubeletVersion $kwokVersion }}
        machineID: {{ or $nodeInfo.machineID ` + "`\"\"`" + ` }}
        operatingSystem: {{ or $nodeInfo.operatingSystem "linux" }}
        osImage: {{ or $nodeInfo.osImage ` + "`\"\"`" + ` }}
        systemUUID: {{ or $nodeInfo.systemUUID ` + "`\"\"`" + ` }}
      phase: Running
`

const stageNodeKubeletStopped = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-kubelet-stopped
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.metadata.annotations["sandbox.kup.dev/kubelet-stopped"]'
      operator: 'Exists'
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values:
      - 'False'
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $now | Quote }}
        message: "kubelet is not running (sandbox: kubelet stopped)"
        reason: KubeletNotReady
        status: "False"
        type: Ready
`

const stageNodeHeartbeat = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-heartbeat-with-lease
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Running'
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'In'
      values:
      - 'True'
    - key: '.metadata.annotations["sandbox.kup.dev/kubelet-stopped"]'
      operator: 'DoesNotExist'
  delay:
    durationMilliseconds: 600000
    jitterDurationMilliseconds: 610000
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ or $.metadata.creationTimestamp $now | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type | Quote }}
      {{ end }}
`

const stagePodReady = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Pending'
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values:
      - 'True'
    - key: '.metadata.annotations["sandbox.kup.dev/crash-loop"]'
      operator: 'DoesNotExist'
  #DELAY#
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: ContainersReady
      {{ range .spec.readinessGates }}
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: {{ .conditionType | Quote }}
      {{ end }}
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        started: true
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
      initContainerStatuses:
      {{ range .spec.initContainers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        state:
          terminated:
            exitCode: 0
            finishedAt: {{ $now | Quote }}
            reason: Completed
            startedAt: {{ $now | Quote }}
      {{ end }}
      {{ $hostIPs := NodeIPsWith .spec.nodeName }}
      {{ with $hostIPs }}
      hostIP: {{ index . 0 | Quote }}
      hostIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      {{ $podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
      {{ with $podIPs }}
      podIP: {{ index . 0 | Quote }}
      podIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      phase: Running
      startTime: {{ $now | Quote }}
`

// stagePodReadyAgain is the kubelet's status sync: when the node
// lifecycle controller marks the pods of a node NotReady (its lease
// expired while the apiserver was away during a control-plane swap), a
// real kubelet reports them Ready again once it reaches the apiserver.
// Without this, kwok's pods stay NotReady for ever and every PDB over them
// sits at zero disruptions allowed.
const stagePodReadyAgain = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready-again
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Running'
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values:
      - 'True'
    - key: '.metadata.annotations["sandbox.kup.dev/crash-loop"]'
      operator: 'DoesNotExist'
  delay:
    durationMilliseconds: 1000
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: ContainersReady
      {{ range .spec.readinessGates }}
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: {{ .conditionType | Quote }}
      {{ end }}
`

const stagePodCrashLoop = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-crash-loop
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Pending'
    - key: '.metadata.annotations["sandbox.kup.dev/crash-loop"]'
      operator: 'Exists'
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        reason: ContainersNotReady
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        reason: ContainersNotReady
        type: ContainersReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 7
        started: false
        lastState:
          terminated:
            exitCode: 1
            reason: Error
            startedAt: {{ $now | Quote }}
            finishedAt: {{ $now | Quote }}
        state:
          waiting:
            reason: CrashLoopBackOff
            message: "back-off 5m0s restarting failed container"
      {{ end }}
      {{ $hostIPs := NodeIPsWith .spec.nodeName }}
      {{ with $hostIPs }}
      hostIP: {{ index . 0 | Quote }}
      {{ end }}
      phase: Running
      startTime: {{ $now | Quote }}
`

const stagePodComplete = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-complete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Running'
    - key: '.metadata.ownerReferences.[].kind'
      operator: 'In'
      values:
      - 'Job'
  next:
    statusTemplate: |
      {{ $now := Now }}
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: 0
            finishedAt: {{ $now | Quote }}
            reason: Completed
            startedAt: {{ $now | Quote }}
      {{ end }}
      phase: Succeeded
`

// stagePodDelete removes a deleted pod after a second, as a kubelet does
// once a container that exits on SIGTERM has stopped. Removing it at once
// races the disruption controller: when it never sees the evicted pod
// terminating, a StatefulSet pod recreated under the same name stays in
// the PDB's disruptedPods for the controller's 2-minute timeout, and the
// budget allows no disruption meanwhile — at random, which made two runs
// of the same upgrade differ by minutes.
const stagePodDelete = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
  delay:
    durationMilliseconds: 1000
  next:
    delete: true
`
