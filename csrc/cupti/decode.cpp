#include "cupti/decode.h"

#include <cxxabi.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include "core/alloc_fault.h"
#include "cupti/api_table.h"

namespace skipnative {

RecordLayout layout_for_version(uint32_t version) {
  if (version >= 130000) return RecordLayout::kCuda13;
  // CUDA 12.0 shipped CUPTI API version 19 (17 and 18 are 11.6 and 11.8, whose
  // records were never checked against the 12.x structs decoded here); 12.x
  // versions stay below 130000.
  if (version >= 19) return RecordLayout::kCuda12;
  throw std::runtime_error("CUPTI API version " + std::to_string(version) +
                           " is older than CUDA 12.0; skipnative decodes CUDA 12.x and 13.x");
}

namespace {

// CUPTI reports kernel names mangled; Kineto (and every trace viewer) shows them
// demangled, so names compare across the two.
std::string demangle(const char* name) {
  if (name[0] == '_' && name[1] == 'Z') {
    int status = 0;
    char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
    if (status == 0 && d != nullptr) {
      std::string out(d);
      std::free(d);
      return out;
    }
    std::free(d);
  }
  return name;
}

uint32_t intern_name(const char* name, DecodeTarget& out) {
  if (name == nullptr) return 0;
  // CUPTI shares one name string among all records of a kernel, so the pointer
  // is a fast key (demangling once per kernel); the compare guards against a
  // reused address.
  auto it = out.name_cache->find(name);
  if (it != out.name_cache->end() && it->second.second == name) return it->second.first;
  uint32_t id = out.names->intern(demangle(name));
  (*out.name_cache)[name] = {id, name};
  return id;
}

bool room(DecodeTarget& out) {
  const size_t events = out.events ? out.events->size() : 0;
  if (out.kernels->size() + out.copies->size() + events < out.max_rows) return true;
  ++*out.rows_dropped;
  return false;
}

// A record CUPTI delivered before its work finished (a forced flush may: its
// end is not written yet): no interval to keep.
template <class R>
bool unfinished(const R* r, DecodeTarget& out) {
  if (r->start != 0 && r->end >= r->start) return false;
  if (out.rows_incomplete != nullptr) ++*out.rows_incomplete;
  return true;
}

template <class K>
void decode_kernel(const K* k, DecodeTarget& out) {
  if (unfinished(k, out) || !room(out)) return;
  KernelRow r{};
  r.t_start = k->start;
  r.t_end = k->end;
  r.t_queued = k->queued == CUPTI_TIMESTAMP_UNKNOWN ? 0 : k->queued;
  r.t_submitted = k->submitted == CUPTI_TIMESTAMP_UNKNOWN ? 0 : k->submitted;
  r.graph_node_id = k->graphNodeId;
  r.correlation_id = k->correlationId;
  r.name_id = intern_name(k->name, out);
  r.device = k->deviceId;
  r.stream = k->streamId;
  r.graph_id = k->graphId;
  r.grid[0] = k->gridX;
  r.grid[1] = k->gridY;
  r.grid[2] = k->gridZ;
  r.block[0] = k->blockX;
  r.block[1] = k->blockY;
  r.block[2] = k->blockZ;
  if (allocation_fails("gpu_row")) throw std::bad_alloc();
  out.kernels->push_back(r);
}

// A memcpy (copy_kind: CUpti_ActivityMemcpyKind) or memset record.
template <class M>
void decode_transfer(const M* m, uint8_t is_set, uint8_t copy_kind, DecodeTarget& out) {
  if (unfinished(m, out) || !room(out)) return;
  CopyRow r{};
  r.t_start = m->start;
  r.t_end = m->end;
  r.bytes = m->bytes;
  r.correlation_id = m->correlationId;
  r.device = m->deviceId;
  r.stream = m->streamId;
  r.graph_id = m->graphId;
  r.graph_node_id = m->graphNodeId;
  r.is_set = is_set;
  r.copy_kind = copy_kind;
  out.copies->push_back(r);
}

// A CUDA event record or a stream's wait for one. CudaEvent2 and
// Synchronization2 (CUPTI 12.8 and newer) extend their first versions, so the
// fields both have are read through the newer struct from either; the sync id
// and the event's device only where CUPTI writes them.
void decode_event(const CUpti_Activity* rec, DecodeTarget& out) {
  EventRow r{};
  r.device = UINT32_MAX;
  if (rec->kind == CUPTI_ACTIVITY_KIND_CUDA_EVENT) {
    auto e = reinterpret_cast<const CUpti_ActivityCudaEvent2*>(rec);
    r.kind = 0;
    r.correlation_id = e->correlationId;
    r.context_id = e->contextId;
    r.stream = e->streamId;
    r.event_id = e->eventId;
    if (out.event_sync_ids) {
      r.device = e->deviceId;
      r.sync_id = e->cudaEventSyncId;
    }
  } else {
    auto w = reinterpret_cast<const CUpti_ActivitySynchronization2*>(rec);
    // Of the synchronisation records, the waits on one stream's work are kept: a
    // stream's wait for an event (kind 1), a thread's for its stream (kind 2:
    // cudaStreamSynchronize) and a thread's for an event (kind 3:
    // cudaEventSynchronize). Context synchronisation waits for all the GPU's
    // work as far as the what-if replay knows, as any sync call does.
    if (w->type == CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_WAIT_EVENT)
      r.kind = 1;
    else if (w->type == CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_SYNCHRONIZE)
      r.kind = 2;
    else if (w->type == CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_EVENT_SYNCHRONIZE)
      r.kind = 3;
    else
      return;
    r.correlation_id = w->correlationId;
    r.context_id = w->contextId;
    r.stream = w->streamId;
    r.event_id = w->cudaEventId;
    // "not applicable" is the 32-bit invalid value; taken as such widened either way
    const uint64_t id = out.event_sync_ids ? w->cudaEventSyncId : 0;
    if (id != uint64_t(CUPTI_SYNCHRONIZATION_INVALID_VALUE) && id != UINT64_MAX) r.sync_id = id;
  }
  if (!room(out)) return;
  out.events->push_back(r);
}

// An overhead record: CUpti_ActivityOverhead3 (CUDA 12.2 and newer) where its
// overheadData is set, which CUPTI allocates and the client frees; the kind,
// overhead kind, object and times lie at the same offsets in all three versions.
const CUpti_ActivityOverhead3* as_overhead(const CUpti_Activity* rec) {
  return rec->kind == CUPTI_ACTIVITY_KIND_OVERHEAD
             ? reinterpret_cast<const CUpti_ActivityOverhead3*>(rec)
             : nullptr;
}

// What CUPTI allocated for a record: the additional data of a command-buffer-full
// overhead record (a kind only Overhead3 reports).
void free_record_memory(const CUpti_Activity* rec) {
  const CUpti_ActivityOverhead3* o = as_overhead(rec);
  if (o != nullptr && o->overheadKind == CUPTI_ACTIVITY_OVERHEAD_COMMAND_BUFFER_FULL)
    std::free(o->overheadData);
}

}  // namespace

std::string overhead_kind_name(uint32_t kind) {
  switch (kind) {
    case CUPTI_ACTIVITY_OVERHEAD_UNKNOWN:
      return "UNKNOWN";
    case CUPTI_ACTIVITY_OVERHEAD_DRIVER_COMPILER:
      return "DRIVER_COMPILER";
    case CUPTI_ACTIVITY_OVERHEAD_CUPTI_BUFFER_FLUSH:
      return "CUPTI_BUFFER_FLUSH";
    case CUPTI_ACTIVITY_OVERHEAD_CUPTI_INSTRUMENTATION:
      return "CUPTI_INSTRUMENTATION";
    case CUPTI_ACTIVITY_OVERHEAD_CUPTI_RESOURCE:
      return "CUPTI_RESOURCE";
    case CUPTI_ACTIVITY_OVERHEAD_RUNTIME_TRIGGERED_MODULE_LOADING:
      return "RUNTIME_TRIGGERED_MODULE_LOADING";
    case CUPTI_ACTIVITY_OVERHEAD_LAZY_FUNCTION_LOADING:
      return "LAZY_FUNCTION_LOADING";
    case CUPTI_ACTIVITY_OVERHEAD_COMMAND_BUFFER_FULL:
      return "COMMAND_BUFFER_FULL";
    case CUPTI_ACTIVITY_OVERHEAD_ACTIVITY_BUFFER_REQUEST:
      return "ACTIVITY_BUFFER_REQUEST";
    case CUPTI_ACTIVITY_OVERHEAD_UVM_ACTIVITY_INIT:
      return "UVM_ACTIVITY_INIT";
    default:
      return "KIND_" + std::to_string(kind);
  }
}

uint64_t count_records(const CuptiApi& api, uint8_t* buffer, size_t valid) {
  uint64_t n = 0;
  CUpti_Activity* rec = nullptr;
  if (buffer == nullptr || valid == 0) return 0;
  while (api.ActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
    free_record_memory(rec);
    ++n;
  }
  return n;
}

namespace {

void decode_record(const CUpti_Activity* rec, RecordLayout layout, DecodeTarget& out) {
  switch (rec->kind) {
    case CUPTI_ACTIVITY_KIND_KERNEL:
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
      if (layout == RecordLayout::kCuda13)
        decode_kernel(reinterpret_cast<const CUpti_ActivityKernel10*>(rec), out);
      else
        decode_kernel(reinterpret_cast<const CUpti_ActivityKernel9*>(rec), out);
      break;
    case CUPTI_ACTIVITY_KIND_MEMCPY:
      if (layout == RecordLayout::kCuda13) {
        auto m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(rec);
        decode_transfer(m, 0, uint8_t(m->copyKind), out);
      } else {
        auto m = reinterpret_cast<const CUpti_ActivityMemcpy5*>(rec);
        decode_transfer(m, 0, uint8_t(m->copyKind), out);
      }
      break;
    case CUPTI_ACTIVITY_KIND_MEMSET:
      decode_transfer(reinterpret_cast<const CUpti_ActivityMemset4*>(rec), 1, 0, out);
      break;
    case CUPTI_ACTIVITY_KIND_RUNTIME:
    case CUPTI_ACTIVITY_KIND_DRIVER:
      if (out.api_rows != nullptr && out.api_rows->size() >= out.max_api_rows) {
        ++*out.api_rows_dropped;
      } else if (out.api_rows != nullptr) {
        // one layout in CUDA 12 and 13; times in the session's clock (its
        // timestamp callback), as the kernel records'
        auto a = reinterpret_cast<const CUpti_ActivityAPI*>(rec);
        const uint8_t dom = rec->kind == CUPTI_ACTIVITY_KIND_DRIVER ? 1 : 0;
        out.api_rows->push_back(LaunchRow{a->start, a->end, a->correlationId, a->threadId,
                                          uint16_t(a->cbid), dom,
                                          api_kind_table().kind(dom, a->cbid), 0});
      } else {
        ++*out.records_ignored;
      }
      break;
    case CUPTI_ACTIVITY_KIND_OVERHEAD:
      if (out.overhead != nullptr) {
        const CUpti_ActivityOverhead3* o = as_overhead(rec);
        OverheadTotal& t = (*out.overhead)[uint32_t(o->overheadKind)];
        ++t.count;
        if (o->end > o->start) t.ns += o->end - o->start;
      } else {
        ++*out.records_ignored;
      }
      break;
    case CUPTI_ACTIVITY_KIND_CUDA_EVENT:
    case CUPTI_ACTIVITY_KIND_SYNCHRONIZATION:
      if (out.events != nullptr)
        decode_event(rec, out);
      else
        ++*out.records_ignored;
      break;
    case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION:
      if (out.external != nullptr) {
        auto e = reinterpret_cast<const CUpti_ActivityExternalCorrelation*>(rec);
        out.external->emplace(uint32_t(e->externalId), e->correlationId);
      } else {
        ++*out.records_ignored;
      }
      break;
    default:
      ++*out.records_ignored;
  }
}

// A record whose row could not be stored (out of memory) is counted as
// unallocated (else where a row over the cap would be); a lost external
// correlation shows as unjoined.
void count_lost(const CUpti_Activity* rec, DecodeTarget& out) {
  if (rec->kind == CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION) return;
  if (out.rows_unallocated != nullptr) {
    ++*out.rows_unallocated;
  } else if (rec->kind == CUPTI_ACTIVITY_KIND_RUNTIME || rec->kind == CUPTI_ACTIVITY_KIND_DRIVER) {
    if (out.api_rows_dropped != nullptr) ++*out.api_rows_dropped;
  } else {
    ++*out.rows_dropped;
  }
}

}  // namespace

void decode_buffer(const CuptiApi& api, RecordLayout layout, uint8_t* buffer, size_t valid,
                   DecodeTarget& out) {
  CUpti_Activity* rec = nullptr;
  while (api.ActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
    // The buffer callback is called from C (CUPTI's thread): nothing may throw out of it.
    try {
      decode_record(rec, layout, out);
    } catch (...) {
      count_lost(rec, out);
    }
    free_record_memory(rec);
  }
}

}  // namespace skipnative
